"""The one AWS account and region the local stack pretends to be, wherever an ARN or a log needs them."""

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
