"""Icons and other plain files shipped with kpstudio (found through kpstudio.resource_path)."""
