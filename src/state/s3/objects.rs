//! The S3 object calls of the state backend, each with the condition that
//! keeps concurrent writers honest: a conditional PUT (`If-None-Match: *` to
//! create, `If-Match: ETAG` to replace), a conditional DELETE, and reads
//! that tell a missing key from a missing bucket. A failed call keeps the
//! SDK's error as its source; its message is one line.

use super::S3Backend;
use crate::state::{State, StateError};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use std::time::Duration;

/// Set once the run is being stopped at once ([`super::held_locks::stop`]):
/// nothing more may be written.
pub(super) static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once the run is being stopped: nothing more may be written.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// S3 answers 409 to a conditional write racing another on the same key;
/// the loser may simply try again.
const CONFLICT_RETRIES: u32 = 5;
/// Journal objects fetched at once by `load`.
const LOAD_CONCURRENCY: usize = 16;

/// A failed request, its message one line and its error kept.
pub(super) fn remote<E>(message: String, source: E) -> StateError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StateError::Remote { message, source: Box::new(source) }
}

pub(super) fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// An SDK error as one line: the service's code and message when it
/// answered, the whole cause chain when it did not.
pub(super) fn explain<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

pub(super) fn is_missing_key<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e.code() {
        Some("NoSuchKey") => true,
        Some("NoSuchBucket") => false,
        _ => status(e) == Some(404),
    }
}

pub(super) enum Cond<'a> {
    IfNoneMatch,
    IfMatch(&'a str),
}

pub(super) struct Put {
    pub(super) etag: Option<String>,
    pub(super) version_id: Option<String>,
}

pub(super) enum PutError {
    /// The condition did not hold: the object exists, or changed.
    Precondition,
    Failed(StateError),
}

pub(super) enum Deleted {
    Yes,
    /// `If-Match` did not hold: the object changed since it was read.
    Changed,
}

impl S3Backend {
    pub(super) fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.settings.bucket)
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, StateError> {
        let client = self.client().await?;
        match client.get_object().bucket(&self.settings.bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let bytes =
                    out.body.collect().await.map_err(|e| {
                        remote(format!("cannot read `{}`: {}", self.uri(key), DisplayErrorContext(&e)), e)
                    })?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e) if is_missing_key(&e) => Ok(None),
            Err(e) => Err(remote(format!("cannot read `{}`: {}", self.uri(key), explain(&e)), e)),
        }
    }

    /// Reads several objects at once, answering in the order asked.
    pub(super) async fn get_all(&self, keys: &[String]) -> Vec<Result<Option<(Vec<u8>, Option<String>)>, StateError>> {
        let reads: Vec<_> = keys.iter().map(|k| self.get(k)).collect();
        futures::stream::iter(reads).buffered(LOAD_CONCURRENCY).collect().await
    }

    /// Writes an object; answers its ETag and version id (`None`, or
    /// `"null"`, when the bucket keeps no versions).
    pub(super) async fn put(&self, key: &str, body: &[u8], cond: Cond<'_>) -> Result<Put, PutError> {
        if stopping() {
            return Err(PutError::Failed(StateError::Other(format!(
                "not writing `{}`: the run is being stopped",
                self.uri(key)
            ))));
        }
        let client = self.client().await.map_err(PutError::Failed)?;
        let mut attempt = 0;
        loop {
            let mut req = client
                .put_object()
                .bucket(&self.settings.bucket)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()));
            if self.settings.encrypt {
                use aws_sdk_s3::types::ServerSideEncryption as Sse;
                req = match &self.settings.kms_key_id {
                    Some(k) => req.server_side_encryption(Sse::AwsKms).ssekms_key_id(k),
                    None => req.server_side_encryption(Sse::Aes256),
                };
            }
            req = match cond {
                Cond::IfNoneMatch => req.if_none_match("*"),
                Cond::IfMatch(etag) => req.if_match(etag),
            };
            match req.send().await {
                Ok(out) => {
                    return Ok(Put {
                        etag: out.e_tag().map(str::to_string),
                        version_id: out.version_id().map(str::to_string),
                    });
                }
                Err(e) if status(&e) == Some(412) => return Err(PutError::Precondition),
                // A missing object fails `If-Match` with 404 on some stores.
                Err(e) if matches!(cond, Cond::IfMatch(_)) && is_missing_key(&e) => return Err(PutError::Precondition),
                Err(e) if status(&e) == Some(409) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    let message = format!("cannot write `{}`: {}", self.uri(key), explain(&e));
                    return Err(PutError::Failed(remote(message, e)));
                }
            }
        }
    }

    pub(super) async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<Deleted, StateError> {
        let client = self.client().await?;
        let mut req = client.delete_object().bucket(&self.settings.bucket).key(key);
        if let Some(etag) = if_match {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(Deleted::Yes),
            Err(e) if status(&e) == Some(412) => Ok(Deleted::Changed),
            Err(e) if is_missing_key(&e) => Ok(Deleted::Yes),
            Err(e) => Err(remote(format!("cannot delete `{}`: {}", self.uri(key), explain(&e)), e)),
        }
    }

    pub(super) async fn delete_many(&self, keys: impl IntoIterator<Item = String>) -> Result<(), StateError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let keys: Vec<String> = keys.into_iter().collect();
        if keys.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| remote(e.to_string(), e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| remote(e.to_string(), e))?;
            let out =
                client.delete_objects().bucket(&self.settings.bucket).delete(delete).send().await.map_err(|e| {
                    let message = format!("cannot delete objects in `s3://{}`: {}", self.settings.bucket, explain(&e));
                    remote(message, e)
                })?;
            if let Some(err) = out.errors().first() {
                return Err(StateError::Other(format!(
                    "cannot delete `{}`: {}",
                    self.uri(err.key().unwrap_or_default()),
                    err.message().or(err.code()).unwrap_or("unknown error")
                )));
            }
        }
        Ok(())
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let client = self.client().await?;
        let mut pages = client.list_objects_v2().bucket(&self.settings.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| remote(format!("cannot list `{}`: {}", self.uri(prefix), explain(&e)), e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        Ok(keys)
    }

    /// Whether the bucket keeps every version of the state itself;
    /// `None` when it cannot be read (no permission, or a store that
    /// answers oddly). Writes do not depend on it: each one tells.
    pub async fn bucket_versioning(&self) -> Result<Option<bool>, StateError> {
        self.check_bucket().await?;
        let client = self.client().await?;
        match client.get_bucket_versioning().bucket(&self.settings.bucket).send().await {
            Ok(out) => Ok(Some(matches!(out.status(), Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled)))),
            Err(e) => {
                tracing::debug!(error = %DisplayErrorContext(&e), "cannot read the bucket's versioning");
                Ok(None)
            }
        }
    }

    /// Checks the bucket exists and these credentials reach it.
    pub async fn check_bucket(&self) -> Result<(), StateError> {
        let client = self.client().await?;
        client.head_bucket().bucket(&self.settings.bucket).send().await.map_err(|e| {
            let why = match status(&e) {
                Some(404) => "the bucket does not exist".to_string(),
                Some(403) => "access denied".to_string(),
                _ => explain(&e),
            };
            remote(format!("cannot use bucket `{}`: {why}", self.settings.bucket), e)
        })?;
        Ok(())
    }

    /// Keeps a copy of a state version, for buckets without versioning.
    pub(super) async fn keep_version(&self, state: &State, body: &[u8]) {
        let key = format!("{}{:010}.json", self.versions_prefix(), state.serial);
        let result = match self.put(&key, body, Cond::IfNoneMatch).await {
            // A forced push can repeat a serial: keep both.
            Err(PutError::Precondition) => {
                let key = format!(
                    "{}{:010}-{}.json",
                    self.versions_prefix(),
                    state.serial,
                    chrono::Utc::now().timestamp_millis()
                );
                self.put(&key, body, Cond::IfNoneMatch).await
            }
            other => other,
        };
        match result {
            Ok(_) => {}
            Err(PutError::Precondition) => {
                tracing::warn!(serial = state.serial, "a copy of this state version already exists")
            }
            Err(PutError::Failed(e)) => {
                tracing::warn!(error = %e, "the state was written, but its version copy was not")
            }
        }
    }
}
