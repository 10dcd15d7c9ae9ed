"""The container's one botocore session, which makes every AWS client the functions use (decision 0035).

Before it loads a service's model, botocore's loader checks that the service exists by listing every
folder of its data: 445 services, about 900 directory reads. It does so once for the model and once
for the endpoint rules, 8 to 10 ms each on the runtime's Python, on every cold start, to learn that
DynamoDB exists. This session's loader is botocore's own, told which services to look for: the
services the functions call. Each is still found in botocore's data, and `AWS_DATA_PATH` is read as
botocore reads it. A client of any other service is refused with botocore's `UnknownServiceError`,
at once: `tests/unit/test_aws_session.py` makes every client `services/common/aws.py` makes.
"""

from __future__ import annotations

import os
from functools import cache

import botocore.session
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

# The services the functions call (services/common/aws.py); a new one is named here too.
SERVICES = ("dynamodb", "events", "kms", "s3", "scheduler", "socialmessaging")


class FunctionsServicesLoader(Loader):
    """botocore's loader, whose list of services is the functions' (those of them its data holds)."""

    def list_available_services(self, type_name: str) -> list[str]:
        return [service for service in SERVICES if self._holds(service, type_name)]

    def _holds(self, service: str, type_name: str) -> bool:
        try:
            return bool(self.list_api_versions(service, type_name))
        except DataNotFoundError:
            return False


@cache
def session() -> botocore.session.Session:
    """The container's session: its loader reads each model once for all clients, and credentials and
    region are resolved once (from the environment, as boto3's would be)."""
    made = botocore.session.get_session()
    data_path = made.get_config_variable("data_path")  # AWS_DATA_PATH, split as botocore's create_loader does
    extra = [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)] if data_path else []
    made.register_component("data_loader", FunctionsServicesLoader(extra_search_paths=extra))
    return made
