"""An S3-compatible server for the add-on backup tests: moto's, on a free loopback port, with
authentication on, so that every request must carry a valid AWS Signature Version 4 (moto
checks it with botocore, the AWS SDK's own signer).

Prints one JSON line: {"endpoint", "bucket", "access_key_id", "secret_access_key"}. Then reads
commands on stdin, one per line, and answers each with one JSON line:

  list     the objects in the bucket: [[key, size], ...]
  uploads  the multipart uploads begun and not completed or aborted: [key, ...]

It stops when stdin closes (the test ended or died).
"""

import json
import os
import sys

# The first requests (the user, its key, its policy and the bucket, made below) go through
# without a signature; every later one is authenticated.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

BUCKET = "dozen-backups"

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{host}:{port}"
anonymous = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="setup",
    aws_secret_access_key="setup",
)
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="dozen")
key = iam.create_access_key(UserName="dozen")["AccessKey"]
iam.put_user_policy(
    UserName="dozen",
    PolicyName="backups",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    ),
)
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=key["AccessKeyId"],
    aws_secret_access_key=key["SecretAccessKey"],
)
s3.create_bucket(Bucket=BUCKET)

print(
    json.dumps(
        {
            "endpoint": endpoint,
            "bucket": BUCKET,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
    ),
    flush=True,
)

for line in sys.stdin:
    command = line.strip()
    if command == "list":
        listed = s3.list_objects_v2(Bucket=BUCKET)
        answer = [[o["Key"], o["Size"]] for o in listed.get("Contents", [])]
    elif command == "uploads":
        listed = s3.list_multipart_uploads(Bucket=BUCKET)
        answer = [u["Key"] for u in listed.get("Uploads", [])]
    else:
        answer = {"error": f"unknown command {command!r}"}
    print(json.dumps(answer), flush=True)

server.stop()
