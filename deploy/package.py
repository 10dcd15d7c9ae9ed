"""What `make deploy` ships, built under `.build/`, the directory `aws cloudformation package` reads:

- `.build/layer/python/`: the locked runtime dependencies (`requirements/lambda.lock`), installed by
  pip for the Lambda platform (`manylinux2014_<arch>`, CPython 3.13, binary wheels only);
- `.build/functions/<service>/services/`: each function's own code, `services/common/` and its
  service's package, nothing else (no tests, no local stack, no other service);
- `.build/cloudformation/`: the templates as CloudFormation must receive them: dashboard bodies in
  place (`deploy/templates.py`), the API deployment's logical id carrying the OpenAPI document's hash,
  and the `/openapi.json` mock answering the public document.

Every function's `Handler` is checked against the code it ships, so a renamed module fails the build
rather than the first invocation.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.openapi import shipped_openapi_text
from deploy.templates import ROOT, TEMPLATES, load_template, render_template, resources_of_type

BUILD = ROOT / ".build"
SERVICES = ("availability", "booking", "audit")
LAMBDA_PYTHON = "3.13"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
HASH_TOKEN = "OPENAPIHASH"


class PackagingError(RuntimeError):
    """Something that would ship broken."""


@dataclass(frozen=True)
class Built:
    templates: Path
    functions: dict[str, Path]
    layer: Path | None


def build(architecture: str = "arm64", *, layer: bool = True, out: Path = BUILD) -> Built:
    if architecture not in PLATFORMS:
        raise PackagingError(f"architecture must be one of {sorted(PLATFORMS)}, not {architecture!r}")
    functions = {service: build_function(service, out / "functions" / service) for service in SERVICES}
    templates = build_templates(out / "cloudformation")
    check_handlers(templates, out)
    return Built(templates, functions, build_layer(architecture, out / "layer") if layer else None)


def build_function(service: str, target: Path) -> Path:
    """The function's code: `services/__init__.py`, `services/common/` and `services/<service>/`."""
    shutil.rmtree(target, ignore_errors=True)
    package = ROOT / "services"
    (target / "services").mkdir(parents=True)
    shutil.copy2(package / "__init__.py", target / "services" / "__init__.py")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.md")
    for part in ("common", service):
        shutil.copytree(package / part, target / "services" / part, ignore=ignore)
    compile_bytecode(target, "the function's code")
    return target


def build_layer(architecture: str, target: Path) -> Path:
    """The dependency layer, as pip installs it for the Lambda platform (binary wheels only)."""
    shutil.rmtree(target, ignore_errors=True)
    site = target / "python"
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--requirement", str(ROOT / "requirements" / "lambda.lock"), "--require-hashes", "--no-deps",
        "--target", str(site), "--platform", PLATFORMS[architecture], "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", "--no-compile",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    compile_bytecode(site, "the layer")
    return target


def compile_bytecode(directory: Path, what: str) -> None:
    """Bytecode for every module under `directory`, as Lambda's Python reads it (decisions 0013, 0021).

    Lambda's file system is read-only, so bytecode is only useful if shipped, compiled by the runtime's
    own Python version: when that interpreter is on this machine, use it. Unchecked hash-based .pyc
    files (PEP 552) are used without comparing the source's modification time, which the zip archive
    keeps only to two seconds: a timestamp .pyc whose source came back a second off would be stale,
    and compiled again at every cold start.
    """
    interpreter = lambda_python()
    if interpreter is not None:
        command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
        subprocess.run([*command, str(directory)], check=True)
    else:
        print(
            f"warning: no python{LAMBDA_PYTHON} here, so {what} ships without bytecode and each cold start"
            " compiles its imports (decision 0013)",
            file=sys.stderr,
        )


def lambda_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version: `$LAMBDA_PYTHON`, on PATH, or pyenv's."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{LAMBDA_PYTHON}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob(f"{LAMBDA_PYTHON}.*/bin/python{LAMBDA_PYTHON}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == LAMBDA_PYTHON:
            return candidate
    return None


def build_templates(target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    (target / "alarms").mkdir(parents=True)
    (target / "api").mkdir()
    for path in [*TEMPLATES.glob("*.yaml"), *(TEMPLATES / "alarms").glob("*.yaml")]:
        text = render_template(path)
        if path.name == "api.yaml":
            text = text.replace(HASH_TOKEN, openapi_hash())
        (target / path.relative_to(TEMPLATES)).write_text(text, encoding="utf-8")
    (target / "api" / "openapi.yaml").write_text(shipped_openapi_text(), encoding="utf-8")
    return target


def openapi_hash() -> str:
    return hashlib.sha256(shipped_openapi_text().encode()).hexdigest()[:12]


def check_handlers(templates: Path, out: Path) -> None:
    """Every function's handler names a module and a function in the code it ships."""
    for path in templates.glob("*.yaml"):
        for logical_id, resource in resources_of_type(load_template(path), "AWS::Lambda::Function").items():
            properties = resource["Properties"]
            code = (path.parent / str(properties["Code"])).resolve()
            module, _, function = str(properties["Handler"]).rpartition(".")
            source = code / (module.replace(".", "/") + ".py")
            if not code.is_relative_to(out.resolve()) or not source.is_file():
                shown = source.relative_to(out.resolve()) if source.is_relative_to(out.resolve()) else source
                raise PackagingError(f"{path.name} {logical_id}: no {shown} for {properties['Handler']}")
            if not re.search(rf"^(def {function}\(|{function} = )", source.read_text(), re.MULTILINE):
                raise PackagingError(f"{path.name} {logical_id}: {source.name} defines no {function}")
