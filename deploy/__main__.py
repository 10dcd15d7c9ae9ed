"""`python -m deploy package` (`make package`), `python -m deploy check` (`make deploy-check`),
`python -m deploy deploy` (`make deploy`) and `python -m deploy destroy` (`make destroy`)."""

from __future__ import annotations

import argparse
import sys

from deploy.checks import Packaged, findings
from deploy.openapi import DocumentError
from deploy.package import BUILD, PackagingError, build
from deploy.stages import AwsCli, DeployError, deploy, destroy, parse_parameters, print_outputs


def package(args: argparse.Namespace) -> int:
    try:
        built = build(args.architecture, layer=not args.no_layer)
    except (PackagingError, DocumentError) as error:
        print(f"packaging failed: {error}", file=sys.stderr)
        return 1
    print(
        f"built {built.templates}, {len(built.functions)} functions" + (f", layer {built.layer}" if built.layer else "")
    )
    return 0


def check(args: argparse.Namespace) -> int:
    """Build the templates (no layer), then apply AWS's deploy-time rules to them."""
    try:
        built = build(layer=False)
    except (PackagingError, DocumentError) as error:
        print(f"packaging failed: {error}", file=sys.stderr)
        return 1
    found = list(findings(Packaged.read(built.templates)))
    for rule, finding in found:
        print(f"{rule.name}: {finding}  ({rule.source})", file=sys.stderr)
    print(f"deploy check: {len(found)} finding(s) in {built.templates.relative_to(BUILD.parent)}")
    return 1 if found else 0


def deploy_stage(args: argparse.Namespace) -> int:
    aws = AwsCli(region=args.region or None)
    try:
        print_outputs(deploy(args.stage, aws, args.architecture, parse_parameters(args.parameter)))
    except DeployError as error:
        print(str(error), file=sys.stderr)
        return 1
    return 0


def destroy_stage(args: argparse.Namespace) -> int:
    aws = AwsCli(region=args.region or None)
    try:
        destroy(args.stage, aws)
    except DeployError as error:
        print(str(error), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description="Build and deploy Appointments to AWS.")
    commands = parser.add_subparsers(dest="command", required=True)
    package_parser = commands.add_parser("package", help="build what make deploy ships, under .build/")
    package_parser.add_argument("--architecture", default="arm64", choices=["arm64", "x86_64"])
    package_parser.add_argument("--no-layer", action="store_true", help="skip the dependency layer")
    package_parser.set_defaults(handler=package)
    commands.add_parser("check", help="AWS's deploy-time rules, on the packaged templates").set_defaults(handler=check)
    deploy_parser = commands.add_parser("deploy", help="build, package and deploy a stage with the AWS CLI")
    destroy_parser = commands.add_parser("destroy", help="delete a stage's stack")
    for stage_parser in (deploy_parser, destroy_parser):
        stage_parser.add_argument("--stage", required=True, help="e.g. dev; the stack is appointments-<stage>")
        stage_parser.add_argument("--region", default="", help="default: the AWS CLI's configured region")
    deploy_parser.add_argument("--architecture", default="arm64", choices=["arm64", "x86_64"])
    deploy_parser.add_argument("--parameter", action="append", default=[], help="Key=Value for the root stack")
    deploy_parser.set_defaults(handler=deploy_stage)
    destroy_parser.set_defaults(handler=destroy_stage)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
