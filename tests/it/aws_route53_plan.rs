//! Plan-time checks across Route53 and VPC resources, through the real
//! binary against the strict AWS layer: a private zone on a VPC without DNS
//! hostnames or support is a warning pointing at the line; a
//! `create_before_destroy` replacement of a private zone that keeps its
//! name and VPC is refused before any call (Route53 lets a VPC see one
//! private zone of a name).

use crate::support;

use support::aws::Aws;
use support::cli::Work;

fn config(dns_hostnames: &str, cbd: bool) -> String {
    let lifecycle = if cbd { "\n  lifecycle {\n    create_before_destroy = true\n  }\n" } else { "" };
    format!(
        r#"variable "aws_endpoint" {{
  type = string
}}

provider "aws" {{
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
  route53_sync_timeout = "30s"
}}

resource "aws_vpc" "main" {{
  cidr_block           = "10.50.0.0/16"
  enable_dns_support   = true
{dns_hostnames}
}}

resource "aws_route53_zone" "internal" {{
  name = "internal"
  vpc {{
    vpc_id = aws_vpc.main.id
  }}{lifecycle}
}}
"#
    )
}

#[test]
fn a_private_zone_on_a_vpc_without_dns_hostnames_is_a_warning_at_its_line() {
    let aws = Aws::start();
    let w = Work::new();
    // `enable_dns_hostnames` left out: AWS's default is false.
    w.write("main.hcl", &config("", false));
    let r = aws.berth(&w, None, &["plan", "--no-color"]);
    r.assert_ok();
    let want = "warning: main.hcl:20:14: private zone `internal` answers in VPC `aws_vpc.main`, whose \
                `enable_dns_hostnames` is false";
    assert!(r.stdout.contains(want), "{}\n{}", r.stdout, r.stderr);

    w.write("main.hcl", &config("  enable_dns_hostnames = true", false));
    let r = aws.berth(&w, None, &["plan", "--no-color"]);
    r.assert_ok();
    assert!(!r.stdout.contains("warning:"), "{}", r.stdout);
}

#[test]
fn create_before_destroy_of_a_private_zone_on_the_same_vpc_is_refused() {
    let aws = Aws::start();
    let w = Work::new();
    w.write("main.hcl", &config("  enable_dns_hostnames = true", true));
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let before = w.read("state/default.json");
    let r = aws.berth(&w, None, &["plan", "--replace", "aws_route53_zone.internal"]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("main.hcl:18:10")
            && r.stderr.contains(
                "`aws_route53_zone.internal`: `create_before_destroy` cannot replace private zone `internal`: the new \
                 zone would have the same name on VPC `vpc-"
            ),
        "{}",
        r.stderr
    );
    assert_eq!(w.read("state/default.json"), before, "the state is untouched");
    // Without create_before_destroy the zone is replaced the other way round.
    w.write("main.hcl", &config("  enable_dns_hostnames = true", false));
    aws.berth(&w, None, &["apply", "--auto-approve", "--replace", "aws_route53_zone.internal"]).assert_ok();
}
