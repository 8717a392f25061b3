"""``mloop package``: a registered model as a Docker build context and Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, local_path, open_client

__all__ = ["package"]


def package(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(metavar="MODEL_REF", help="model:<name>/<version>, model:<name>@<alias> or model:<name>.")
    ],
    docker: Annotated[
        Path | None,
        typer.Option("--docker", metavar="DIR", parser=local_path,
                     help="Write a reproducible Docker build context here (Dockerfile, requirements, bundle)."),
    ] = None,
    kubernetes: Annotated[
        Path | None,
        typer.Option("--kubernetes", metavar="DIR", parser=local_path,
                     help="Write Deployment, Service and HorizontalPodAutoscaler manifests here."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", metavar="NAME", help="Image the manifests run (default mloop-<name>:<v>).")
    ] = None,
    replicas_min: Annotated[int, typer.Option("--replicas-min", metavar="N", help="Fewest replicas.")] = 2,
    replicas_max: Annotated[int, typer.Option("--replicas-max", metavar="N", help="Most replicas.")] = 5,
    target_cpu: Annotated[
        int, typer.Option("--target-cpu", metavar="PERCENT", help="Average CPU use (of the request) to scale at.")
    ] = 70,
    cpu: Annotated[
        str | None, typer.Option("--cpu", metavar="QUANTITY", help="CPU request, e.g. 500m (default: the version's "
                                 "profile, else 500m).")
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", metavar="QUANTITY", help="Memory request, e.g. 256Mi (default: the "
                                 "version's profile, else 512Mi).")
    ] = None,
    mloop_wheel: Annotated[
        Path | None,
        typer.Option("--mloop-wheel", metavar="FILE", parser=local_path,
                     help="Ship this mloop wheel (default: build one from the installed source tree)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into non-empty folders (replacing what package writes).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Package a registered model as a Docker build context and/or Kubernetes manifests.

    The build context is reproducible (the same version gives the same bytes): a Dockerfile on python:X.Y.Z-slim
    (the version's recorded Python), requirements.txt pinned to the version's environment lock and the scoring
    server's dependencies, mloop's wheel, and the model bundle (files + manifest with digests) that the
    entrypoint `mloop serve --bundle` verifies before serving. Resource requests come from --cpu/--memory, else
    from the version's `mloop profile` figures, else defaults.

    \b
    Examples:
      mloop package model:churn@production --docker build/ --kubernetes deploy/
      docker build -t churn:3 build/ && kubectl apply -f deploy/
      mloop package churn/3 --kubernetes deploy/ --image registry.example.com/churn:3 --replicas-max 10
    """
    from mloop.cli.output import heading, print_json, stdout_console
    from mloop.serving.package import package_model

    with open_client(ctx) as client:
        result = package_model(client, model, docker=docker, kubernetes=kubernetes, image=image,
                               replicas_min=replicas_min, replicas_max=replicas_max, target_cpu=target_cpu, cpu=cpu,
                               memory=memory, force=force, mloop_wheel=mloop_wheel)  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    heading(f"Packaged {result.model} (image {result.image}, Python {result.python}).")
    console = stdout_console()
    for path in result.files:
        console.print(f"  {path}", highlight=False, markup=False)
    if result.resources is not None:
        r = result.resources
        console.print(f"Requests: cpu {r.cpu} ({r.cpu_source}), memory {r.memory} ({r.memory_source}).",
                      highlight=False, markup=False)  # fmt: skip
    if result.docker is not None:
        console.print(f"Build: docker build -t {result.image} {result.docker}", highlight=False, markup=False)
    if result.kubernetes is not None:
        console.print(f"Deploy: kubectl apply -f {result.kubernetes}", highlight=False, markup=False)
