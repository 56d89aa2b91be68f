"""``macaron deploy gke --rehearse``: the whole pipeline against the Kubernetes API stand-in and a local registry.

The deploy itself is unchanged: the ``kubernetes`` client is pointed at the stand-in by a kubeconfig the stand-in
wrote (context ``standin``, a bearer token), as it would be at a cluster; only the registry and the deadlines are
the rehearsal's.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from macaron.config import Config
from macaron.deploying import DeployError, Pipeline, local_registry
from macaron.image import ImageError, base_image, default_base, find_tool

REHEARSAL_DEADLINE = 120  # seconds: a rollout on this machine is a container start


def rehearsal_base(config: Config, pipeline: Pipeline) -> str:
    """The base image to build on: the configured one if the image tool has it, else ``macaron image base``."""
    image = config.section("image")
    base = str(image.get("base") or default_base())
    if not find_tool(image.get("builder")).exists(base):
        pipeline.say(f"the base {base} is not in the image tool's storage: using 'macaron image base' (cached after the first time)")
        try:
            base = str(base_image(builder=image.get("builder"), progress=pipeline.say)["image"])
        except ImageError as exc:
            raise DeployError(str(exc)) from exc
    return base


def rehearse(root: Path, config: Config, options: dict[str, Any]) -> dict[str, Any]:
    """Three rounds, as a service lives: a first deploy, an update, a rollback."""
    from macaron_gke.gke import Gke
    from macaron_gke.gke_objects import load_settings

    try:
        from macaron_gke.k8s_standin import KubeStandin
    except ModuleNotFoundError as exc:
        if exc.name != "macaron_gke.k8s_standin":
            raise
        raise DeployError("the Kubernetes API stand-in is not in this version of macaron-gke yet (issue 13); nothing was deployed") from None

    version = str(options.get("version") or config.get("version") or "local")
    update = f"{version}-rehearsal"
    pipeline = Pipeline("gke", as_json=bool(options.get("json")))
    base = rehearsal_base(config, pipeline)
    settings = load_settings(config, str(config.get("name") or root.name), environ={})
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="macaron-gke-") as folder, local_registry() as registry:
        with KubeStandin(Path(folder), progress_deadline_cap=REHEARSAL_DEADLINE) as kube:
            kubeconfig = kube.write_kubeconfig(Path(folder) / "kubeconfig", namespace=settings.namespace)
            settings = replace(
                settings,
                kubeconfig=str(kubeconfig),
                cluster="standin",
                registry=f"{registry}/rehearsal",
                url=None,
                progress_deadline=min(settings.progress_deadline, REHEARSAL_DEADLINE),
                timeout=min(settings.timeout, 120.0),
            )

            def run(label: str, **extra: Any) -> dict[str, Any]:
                pipeline.say(f"rehearsal: {label}")
                gke = Gke(root, config, {**options, "dry_run": False, **extra}, settings=settings, pipeline=pipeline, base=base, rehearsing=True)
                summary = gke.run()
                rounds.append({"round": label, "url": summary.get("url"), "version": summary.get("version"), "revision": summary.get("revision")})
                return summary

            run(f"first deploy of {version}", version=version)
            run(f"update to {update}", version=update)
            last = run("rollback", rollback="previous", version=update)
    return pipeline.summary(url=last.get("url"), rehearsal=True, rounds=rounds)
