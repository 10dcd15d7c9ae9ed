"""The stack's functions as their `AWS::Lambda::Function` resources define them.

Each service's template (`cloudformation/<service>.yaml`) is resolved as CloudFormation would resolve
it, with the stage's parameters, the resources' local names and ARNs, so handler, runtime, memory,
timeout, environment, reserved concurrency and logging come from the template and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.cloudformation.resolver import local_arn, physical_names, resolver_for

SERVICE_TEMPLATES = ("availability.yaml", "booking.yaml", "audit.yaml")


@dataclass(frozen=True)
class FunctionSpec:
    """What the local runtime needs from an `AWS::Lambda::Function` resource."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, str]
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions; None: the account's pool
    log_format: str = "Text"
    log_group: str = ""
    application_log_level: str | None = None

    @classmethod
    def from_resource(cls, logical_id: str, properties: dict[str, Any]) -> FunctionSpec:
        logging_config = properties.get("LoggingConfig", {})
        name = properties.get("FunctionName", logical_id)
        reserved = properties.get("ReservedConcurrentExecutions")  # 0 is valid: the function never runs
        return cls(
            logical_id=logical_id,
            name=name,
            handler=properties["Handler"],
            runtime=properties.get("Runtime", "python3.13"),
            memory_mb=int(properties.get("MemorySize", 128)),
            timeout_seconds=int(properties.get("Timeout", 3)),
            environment={k: str(v) for k, v in properties.get("Environment", {}).get("Variables", {}).items()},
            reserved_concurrency=None if reserved is None else int(reserved),
            log_format=logging_config.get("LogFormat", "Text"),
            log_group=logging_config.get("LogGroup", f"/aws/lambda/{name}"),
            application_log_level=logging_config.get("ApplicationLogLevel"),
        )


def resolved_resources(
    resource_type: str,
    parameters: dict[str, str],
    templates: Path = TEMPLATES,
    service_templates: tuple[str, ...] = SERVICE_TEMPLATES,
) -> dict[str, dict[str, Any]]:
    """The properties of every resource of `resource_type` in the services' stacks, keyed by logical
    id, resolved as CloudFormation would with the stage's parameters (functions' ARNs are local ones)."""
    found: dict[str, dict[str, Any]] = {}
    for template_name in service_templates:
        template = load_template(templates / template_name)
        own_parameters = {k: v for k, v in parameters.items() if k in template.get("Parameters", {})}
        names = physical_names(template, resolver_for(template, own_parameters))
        resolver = resolver_for(
            template,
            own_parameters,
            resources=names,
            attributes={f"{logical_id}.Arn": local_arn(name) for logical_id, name in names.items()},
        )
        for logical_id, resource in resources_of_type(template, resource_type).items():
            found[logical_id] = resolver.resolve(resource["Properties"])
    return found


def load_functions(
    parameters: dict[str, str], templates: Path = TEMPLATES, service_templates: tuple[str, ...] = SERVICE_TEMPLATES
) -> dict[str, FunctionSpec]:
    """Every function of the services' stacks, keyed by logical id, with resolved properties."""
    found = resolved_resources("AWS::Lambda::Function", parameters, templates, service_templates)
    return {logical_id: FunctionSpec.from_resource(logical_id, properties) for logical_id, properties in found.items()}


def unretried_async(
    parameters: dict[str, str], templates: Path = TEMPLATES, service_templates: tuple[str, ...] = SERVICE_TEMPLATES
) -> dict[str, int]:
    """The functions Lambda does not retry after a failed asynchronous invocation (an
    `AWS::Lambda::EventInvokeConfig` on `$LATEST` with `MaximumRetryAttempts: 0`), by name, with how
    long Lambda's queue keeps an event for them (`MaximumEventAgeInSeconds`, 6 hours by default).
    EventBridge Scheduler and rules invoke `$LATEST`: a config on an alias or a version would leave
    it retried. A FunctionName may be a name or an ARN (its last part)."""
    configs = resolved_resources("AWS::Lambda::EventInvokeConfig", parameters, templates, service_templates)
    return {
        str(config["FunctionName"]).rsplit(":", 1)[-1]: int(config.get("MaximumEventAgeInSeconds", 21_600))
        for config in configs.values()
        if int(config.get("MaximumRetryAttempts", 2)) == 0 and config.get("Qualifier") == "$LATEST"
    }
