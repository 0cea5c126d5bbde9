"""`kpstudio plan`: the training settings a project's labels call for, a sentence per choice."""

from __future__ import annotations

import json


def cmd_plan(args) -> int:
    from kpstudio.core.plan import plan_for_project
    from kpstudio.core.project import Project

    with Project.open(args.project, readonly=True) as project:
        plan = plan_for_project(project, args.minutes)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    settings = plan.settings()
    head = ", ".join(f"{k} {v}" for k, v in settings.items() if k not in ("augmentation", "epochs"))
    print(f"plan for {args.project}: {head}, zoom ±{settings['augmentation']['scale']:g}")
    for sentence in plan.sentences:
        print(f"- {sentence}")
    return 0
