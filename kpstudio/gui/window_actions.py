"""Menus, toolbar and shortcuts of the studio window, all as QActions."""

from __future__ import annotations

from functools import partial

from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QMessageBox


def build_actions(window) -> dict[str, QAction]:
    """Create every action of `window` (a MainWindow); returns them by name for tests."""
    from kpstudio.gui import export_dialog, video_player
    from kpstudio.gui.next_suggested import NextSuggested

    flows = window.file_flows

    actions: dict[str, QAction] = {}

    def add(name, text, slot, shortcut=None, menu=None, shortcuts=None):
        action = QAction(text, window)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        elif shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda checked=False: slot())
        window.addAction(action)  # shortcuts work even when the action is in no menu
        if menu is not None:
            menu.addAction(action)
        actions[name] = action
        return action

    def with_controller(method_name, *args):
        def call():
            if window.controller is not None:
                getattr(window.controller, method_name)(*args)

        return call

    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    add("new", "&New project from image folder…", flows.new_project,
        QKeySequence.StandardKey.New, file_menu)  # fmt: skip
    add("open", "&Open project…", flows.open_project_dialog,
        QKeySequence.StandardKey.Open, file_menu)  # fmt: skip
    recent_menu = file_menu.addMenu("Open &recent")
    recent_menu.aboutToShow.connect(partial(_fill_recent, window, recent_menu))
    file_menu.addSeparator()
    add("add_images", "&Add images from folder…", flows.add_image_folder,
        "Ctrl+Shift+A", file_menu)  # fmt: skip
    add("add_video", "Add &video frames…", flows.add_video_frames,
        None, file_menu)  # fmt: skip
    add("import", "&Import annotations…", flows.import_annotations,
        "Ctrl+I", file_menu)  # fmt: skip
    add("export", "&Export…", partial(export_dialog.open_export_dialog, window), "Ctrl+E",
        file_menu)  # fmt: skip
    file_menu.addSeparator()
    add("quit", "&Quit", window.close, QKeySequence.StandardKey.Quit, file_menu)

    edit_menu = bar.addMenu("&Edit")
    window.edit_menu = edit_menu
    add("copy_previous", "&Copy labels from previous image", window.copy_previous_labels,
        "Ctrl+Shift+V", edit_menu)  # fmt: skip
    add("visibility", "Cycle &visibility (visible → occluded → absent)",
        with_controller("cycle_visibility"), "V", edit_menu)  # fmt: skip
    add("absent", "Mark current keypoint &absent", with_controller("mark_absent"), "X", edit_menu)
    add("delete", "&Delete point", with_controller("delete_selected"),
        None, edit_menu, shortcuts=["Delete", "Backspace"])  # fmt: skip
    # Several animals per image: clicks go to this new object until a marker of another is
    # picked (clicking a marker selects its object).
    add("new_object", "Label another &object on this image", with_controller("label_new_object"),
        "O", edit_menu)  # fmt: skip
    add("next_object", "&Next object on this image", with_controller("next_object"), "Shift+O",
        edit_menu)  # fmt: skip
    edit_menu.addSeparator()
    add("skeleton", "Edit &skeleton…", flows.edit_skeleton, "Ctrl+K",
        edit_menu)  # fmt: skip
    window.keypoints.edit_skeleton_requested.connect(flows.edit_skeleton)

    view_menu = bar.addMenu("&View")
    add("fit", "&Fit image", window.canvas.fit, "F", view_menu)
    add("actual", "&Actual size (1:1)", window.canvas.zoom_1to1, "Ctrl+0", view_menu)
    add("zoom_in", "Zoom &in", partial(window.canvas.zoom_by, 1.25),
        QKeySequence.StandardKey.ZoomIn, view_menu)  # fmt: skip
    add("zoom_out", "Zoom &out", partial(window.canvas.zoom_by, 0.8),
        QKeySequence.StandardKey.ZoomOut, view_menu)  # fmt: skip
    view_menu.addSeparator()
    view_menu.addAction(window.list_dock.toggleViewAction())
    view_menu.addAction(window.keypoint_dock.toggleViewAction())
    view_menu.addAction(window.train_dock.toggleViewAction())
    view_menu.addAction(window.review_dock.toggleViewAction())
    add("reset_layout", "&Reset layout", window.reset_layout, None, view_menu)

    go_menu = bar.addMenu("&Go")
    add("next", "&Next image", partial(window.step_image, 1), None, go_menu,
        shortcuts=["D", "PgDown"])  # fmt: skip
    add("previous", "&Previous image", partial(window.step_image, -1), None, go_menu,
        shortcuts=["A", "PgUp"])  # fmt: skip
    add("next_unlabeled", "Next &unlabeled image", window.next_unlabeled, "N", go_menu)
    # The image that should teach the model most (chosen in a Task: kpstudio.gui.next_suggested).
    window.next_suggested = NextSuggested(
        document=lambda: window.doc, current_image=window.current_image,
        show_image=window.show_image, run_task=window.run_task, status=window.show_status,
        parent=window,
    )  # fmt: skip
    add("next_suggested", "Next &suggested image", window.next_suggested.go, "Ctrl+J", go_menu)

    # Keys without menu entries: nudges and keypoint numbers.
    for name, key, dx, dy in (("left", "Left", -1, 0), ("right", "Right", 1, 0),
                              ("up", "Up", 0, -1), ("down", "Down", 0, 1)):  # fmt: skip
        add(f"nudge_{name}", f"Nudge {name}", with_controller("nudge", dx, dy), key)
        add(f"nudge_fine_{name}", f"Nudge {name} 0.1 px",
            with_controller("nudge", dx / 10, dy / 10), f"Shift+{key}")  # fmt: skip
    for number in range(10):
        add(f"keypoint_{number}", f"Keypoint {number}",
            with_controller("choose_keypoint_number", number), str(number))  # fmt: skip

    model_menu = bar.addMenu("&Model")
    add("predict", "&Predict this image (active model)", window.review.predict_current, "P",
        model_menu)  # fmt: skip
    add("predict_selected", "Predict the &selected images", window.review.predict_selected,
        "Shift+P", model_menu)  # fmt: skip
    add("predict_unlabeled", "Predict all &unlabeled images", window.review.predict_unlabeled,
        "Ctrl+Shift+P", model_menu)  # fmt: skip
    add("accept", "&Accept prediction as labels", window.review.accept, "Ctrl+Return",
        model_menu)  # fmt: skip

    video_menu = bar.addMenu("V&ideo")
    add("video_player", "Open &video player…", partial(video_player.open_video_player, window),
        None, video_menu)  # fmt: skip

    help_menu = bar.addMenu("&Help")
    add("about", "&About kpstudio",
        lambda: QMessageBox.about(window, "About kpstudio", window.about_text()), None,
        help_menu)  # fmt: skip

    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("main_toolbar")
    for name in ("open", "add_images", "fit", "previous", "next", "next_unlabeled"):
        toolbar.addAction(actions[name])
    return actions


def bind_undo_actions(window, stack: QUndoStack) -> None:
    """Undo/Redo entries that name what they will undo, for the open project's stack."""
    menu = window.edit_menu
    for name in ("undo", "redo"):
        old = window.actions_by_name.pop(name, None)
        if old is not None:
            menu.removeAction(old)
            window.removeAction(old)
    undo = stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = stack.createRedoAction(window, "&Redo")
    redo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, undo)
    menu.insertAction(first, redo)
    if first is not None:
        menu.insertSeparator(first)
    window.addAction(undo)
    window.addAction(redo)
    window.actions_by_name.update(undo=undo, redo=redo)


def _fill_recent(window, menu) -> None:
    menu.clear()
    for folder in window.recent_projects():
        action = menu.addAction(folder)
        action.triggered.connect(partial(window.file_flows.open_project_folder, folder))
    if not menu.actions():
        menu.addAction("(none yet)").setEnabled(False)
