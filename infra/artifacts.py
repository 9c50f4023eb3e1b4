"""The built artifacts the program deploys, checked before anything is created.

``nox -s build`` writes each stage's zip and manifest to ``dist/`` (``build_artifacts``).
Here the program finds them and refuses, with one message naming ``nox -s build``, an
artifact that is missing, one changed after it was built, or one built from sources that
have changed since (the manifest's fingerprint no longer matches): deploying yesterday's
zip under today's configuration is how environments silently drift.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.build_artifacts import STAGES, Stage, file_sha256, source_fingerprint


class ArtifactError(RuntimeError):
    """An artifact is missing, altered or stale; the message says which build to run."""


@dataclass(frozen=True)
class LambdaArtifact:
    """One stage's Lambda zip."""

    stage: str
    distribution: str
    path: Path
    sha256: str
    unzipped_bytes: int

    @property
    def code_hash(self) -> str:
        """Base64 SHA-256, the form Lambda reports as ``CodeSha256``."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")


@dataclass(frozen=True)
class ImageContext:
    """The bundle image's build context and its digest (the image tag)."""

    path: Path
    digest: str


@dataclass(frozen=True)
class Artifacts:
    """Every artifact of the stack, checked."""

    lambdas: dict[str, LambdaArtifact]
    bundle_image: ImageContext


def load_artifacts(dist: Path) -> Artifacts:
    """Find and check every stage's artifacts in ``dist``; ArtifactError lists every problem."""
    problems: list[str] = []
    lambdas: dict[str, LambdaArtifact] = {}
    image: ImageContext | None = None
    for stage in STAGES.values():
        manifest = _manifest(stage, stage.zip_manifest_path(dist), stage.zip_path(dist), problems)
        if manifest is not None:
            actual = file_sha256(stage.zip_path(dist))
            if actual != manifest["sha256"]:
                problems.append(
                    f"{stage.zip_path(dist)} was changed after it was built; "
                    f"rebuild it with `nox -s build -- {stage.name}`"
                )
            else:
                lambdas[stage.name] = LambdaArtifact(
                    stage.name,
                    stage.distribution,
                    stage.zip_path(dist),
                    actual,
                    int(manifest["unzipped_bytes"]),
                )
        if stage.image:
            context = stage.image_context_path(dist)
            manifest = _manifest(stage, stage.image_manifest_path(dist), context, problems)
            if manifest is not None:
                image = ImageContext(context, str(manifest["context_sha256"]))
    if problems or image is None:
        raise ArtifactError(
            "the stack's artifacts are not ready; build them with `nox -s build` first:\n- "
            + "\n- ".join(problems or ["the bundle image context is missing"])
        )
    return Artifacts(lambdas, image)


def _manifest(
    stage: Stage, manifest_path: Path, artifact: Path, problems: list[str]
) -> dict[str, Any] | None:
    if not artifact.exists() or not manifest_path.is_file():
        problems.append(f"{artifact} is missing; build it with `nox -s build -- {stage.name}`")
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("source_fingerprint") != source_fingerprint(stage):
        problems.append(
            f"{artifact} is stale: {stage.distribution}'s sources or uv.lock changed since "
            f"it was built; rebuild it with `nox -s build -- {stage.name}`"
        )
        return None
    return dict(manifest)


class LambdaCode(pulumi.ComponentResource):
    """Each stage's zip, uploaded once to the ARTIFACTS bucket under its SHA-256.

    Lambda takes code over 50 MB only from S3 (the polars stages are about 75 MB zipped).
    The key is the content hash, so an unchanged build is the same object and the
    functions using it are not updated; two functions of one stage share one object.
    """

    objects: dict[str, aws.s3.BucketObjectv2]

    def __init__(
        self,
        name: str,
        artifacts: dict[str, LambdaArtifact],
        bucket: aws.s3.Bucket,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ryuzen:index:LambdaCode", name, None, opts)
        self.artifacts = artifacts
        self.objects = {
            stage: aws.s3.BucketObjectv2(
                f"{name}-{stage}",
                bucket=bucket.id,
                key=f"lambda/{artifact.distribution}/{artifact.sha256}.zip",
                source=pulumi.FileAsset(str(artifact.path)),
                content_type="application/zip",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for stage, artifact in sorted(artifacts.items())
        }
        self.register_outputs({stage: obj.key for stage, obj in self.objects.items()})
