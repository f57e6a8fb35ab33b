//! EC2's errors in berth's terms: one line per failed call, with the
//! [`ProviderErrorKind`] the engine decides by.
//!
//! The kind matters most for creates: a call whose answer never came back
//! (or that failed inside AWS) may have made its object anyway, so it is
//! `Indeterminate` and the create stays pending for the next run to adopt.
//! This module is the leaf under [`super::retry`] and [`super::client`]:
//! both classify errors, neither may import the other for it.

use crate::providers::{ProviderError, ProviderErrorKind};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;

/// An SDK error as one line: `ACTION: CODE: message`, never a Debug dump,
/// with its [`ProviderErrorKind`].
pub fn sdk_error<E>(action: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = match err.code() {
        Some(code) => {
            ProviderError::new(format!("{action} failed: {code}: {}", err.message().unwrap_or("(no message)")))
        }
        None => ProviderError::new(format!("{action} failed: {}", DisplayErrorContext(err))),
    };
    e.with_kind(error_kind(err))
}

/// `e` about one attribute, so the engine points at it; its kind is kept.
pub fn about(attr: &str, mut e: ProviderError) -> ProviderError {
    e.attribute = Some(attr.to_string());
    e
}

/// Whether a request that failed this way may nevertheless have been carried
/// out: its answer never arrived (a dropped connection, a timeout, an answer
/// cut short) or the service failed inside (HTTP 500 `InternalError`). A
/// throttling answer, a 503, a 500 for want of capacity
/// (`InsufficientInstanceCapacity` and its kin) and every 4xx say the
/// request was refused.
pub fn may_have_landed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(d) => !d.is_user(),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() == 500 && !err.code().is_some_and(|c| c.starts_with("Insufficient"))
        }
        _ => false,
    }
}

/// EC2's throttling codes ("Request throttling for the Amazon EC2 API").
const THROTTLING: &[&str] = &["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"];

/// The kind of an SDK error, for the engine: above all, whether a failed
/// create may have landed ([`ProviderErrorKind::Indeterminate`]), so that it
/// stays pending and the next run looks for its object.
pub fn error_kind<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ProviderErrorKind {
    use ProviderErrorKind::*;
    if let Some(code) = err.code()
        && THROTTLING.contains(&code)
    {
        return Throttled;
    }
    if may_have_landed(err) {
        return Indeterminate;
    }
    let Some(code) = err.code() else {
        return match err {
            SdkError::ConstructionFailure(_) => Invalid,
            // A 503 without a code: the service refused, and retries ran out.
            _ => Other,
        };
    };
    if code.ends_with(".NotFound") || code.ends_with("NotFound") {
        NotFound
    } else if code.ends_with(".Duplicate")
        || code.ends_with(".InUse")
        || code.ends_with(".Conflict")
        || code.contains("AlreadyExists")
        || code.contains("AlreadyAssociated")
        || matches!(code, "DependencyViolation" | "IdempotentParameterMismatch" | "IncorrectState")
    {
        Conflict
    } else if code.starts_with("Invalid")
        || code.starts_with("Unauthorized")
        || code.starts_with("Unsupported")
        || code.starts_with("Missing")
        || code.ends_with("LimitExceeded")
        || matches!(code, "AuthFailure" | "OptInRequired" | "Blocked")
    {
        Invalid
    } else {
        Other
    }
}

/// A short cause of a failed call for the debug log, in the words of the
/// SDK retry lines (`RequestLimitExceeded (HTTP 503)`, `a connection error`).
pub fn failure_cause<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::DispatchFailure(_) => "a connection error".into(),
        SdkError::TimeoutError(_) => "a timeout".into(),
        SdkError::ResponseError(_) => "an answer cut short".into(),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match err.code() {
                Some(code) => format!("{code} (HTTP {status})"),
                None => format!("HTTP {status}"),
            }
        }
        _ => "an error".into(),
    }
}

/// The error code of an SDK error, when the service sent one.
pub fn code_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_the_request_may_have_landed() {
        use aws_sdk_ec2::error::ErrorMetadata;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::body::SdkBody;
        type E = SdkError<ErrorMetadata, HttpResponse>;
        let service = |code: &str, status: u16| -> E {
            let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            SdkError::service_error(ErrorMetadata::builder().code(code).message("m").build(), raw)
        };
        let dropped: E = SdkError::dispatch_failure(ConnectorError::io("connection closed".into()));
        let timeout: E = SdkError::timeout_error("too slow");
        assert!(may_have_landed(&dropped) && may_have_landed(&timeout));
        assert!(may_have_landed(&service("InternalError", 500)));
        assert!(!may_have_landed(&service("InsufficientInstanceCapacity", 500)));
        assert!(!may_have_landed(&service("RequestLimitExceeded", 503)));
        assert!(!may_have_landed(&service("InvalidParameterValue", 400)));
        use ProviderErrorKind::*;
        assert_eq!(error_kind(&dropped), Indeterminate);
        assert_eq!(error_kind(&service("InternalError", 500)), Indeterminate);
        assert_eq!(error_kind(&service("RequestLimitExceeded", 503)), Throttled);
        assert_eq!(error_kind(&service("InvalidVpcID.NotFound", 400)), NotFound);
        assert_eq!(error_kind(&service("InvalidGroup.Duplicate", 400)), Conflict);
        assert_eq!(error_kind(&service("InvalidParameterValue", 400)), Invalid);
        assert_eq!(sdk_error("CreateVpc", &dropped).kind, Indeterminate);
        assert_eq!(failure_cause(&service("RequestLimitExceeded", 503)), "RequestLimitExceeded (HTTP 503)");
    }
}
