//! AWS providers. Temporary stand-in in this branch: the composite
//! `AwsProvider` (provider configuration, EC2 resources) lives in its own
//! branch and forwards the `aws_route53_*` types to [`route53::Route53`].

pub mod route53;
