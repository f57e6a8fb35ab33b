//! Talks to one authoritative DNS server: queries to read RRsets back, and
//! RFC 2136 UPDATE messages to change them, both signed with TSIG (RFC 8945)
//! when a key is configured, as hashicorp/dns does.
//!
//! Each exchange opens its own connection, so a batch can run many at once.
//! Answers are checked before they are believed: the id must match, and
//! with a key the answer's TSIG must verify against the request's MAC.
//! Failures become [`DnsError`]s that name the server, the record and, for
//! key problems, the key (never its secret).

use super::config::{Transport, TsigKey, UpdateConfig};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How far apart our clock and the server's may be (RFC 8945 suggests 300 s).
const FUDGE: u16 = 300;

/// The EDNS payload size announced over UDP (the DNS flag day 2020 value).
const UDP_PAYLOAD: u16 = 1232;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Query,
    Update,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Query => "query",
            Operation::Update => "update",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum DnsError {
    #[error("DNS server {server} refused the {op} for `{fqdn}`: TSIG key `{key}` was not accepted ({codes}){hint}")]
    KeyRejected { server: String, op: Operation, fqdn: String, key: String, codes: String, hint: &'static str },
    #[error(
        "DNS server {server} refused the {op} for `{fqdn}` (NOTAUTH): it is not authoritative for zone `{zone}`, or it requires a TSIG key (set `update.key_name` and `update.key_secret`)"
    )]
    NotAuth { server: String, op: Operation, fqdn: String, zone: String },
    #[error(
        "DNS server {server} refused the {op} for `{fqdn}` (REFUSED): the `{allow}` of zone `{zone}` does not allow {who}"
    )]
    Refused { server: String, op: Operation, fqdn: String, zone: String, allow: &'static str, who: String },
    #[error("DNS server {server} says `{fqdn}` is not inside zone `{zone}` (NOTZONE)")]
    NotZone { server: String, fqdn: String, zone: String },
    #[error("DNS server {server} answered {rcode} to the {op} for `{fqdn}`")]
    Rcode { server: String, op: Operation, fqdn: String, rcode: String },
    #[error("DNS server {server} did not answer the {op} for `{fqdn}` within {timeout} ({attempts} attempts over {transport})")]
    Timeout { server: String, op: Operation, fqdn: String, timeout: String, attempts: u32, transport: Transport },
    /// (The I/O error is kept as text: DNS errors are compared and cloned.)
    #[error("cannot reach DNS server {server} over {transport} for the {op} of `{fqdn}`: {reason}")]
    Io { server: String, op: Operation, fqdn: String, transport: Transport, reason: String },
    #[error("the answer of DNS server {server} to the {op} for `{fqdn}` failed TSIG verification with key `{key}`: {reason}")]
    BadAnswerSignature { server: String, op: Operation, fqdn: String, key: String, reason: String },
    #[error("DNS server {server} sent an answer to the {op} for `{fqdn}` that berth cannot use: {reason}")]
    Malformed { server: String, op: Operation, fqdn: String, reason: String },
    #[error("cannot build the DNS {op} for `{fqdn}`: {reason}")]
    Build { op: Operation, fqdn: String, reason: String },
}

/// What a query found.
#[derive(Debug)]
pub enum Answer {
    /// NOERROR with these answer records (possibly none).
    Records(Vec<Record>),
    /// NXDOMAIN: no such name.
    NoSuchName,
}

/// A connection-less client for one server.
pub struct Client {
    config: UpdateConfig,
    signer: Option<TSigner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signer holds the secret: only the configuration (whose Debug
        // hides it) is shown.
        f.debug_struct("Client").field("config", &self.config).finish()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Client {
    pub fn new(config: UpdateConfig) -> Result<Client, String> {
        let signer = match &config.key {
            None => None,
            Some(TsigKey { name, algorithm, secret }) => {
                let name = Name::from_ascii(name).map_err(|e| format!("`update.key_name` `{name}`: {e}"))?;
                Some(
                    TSigner::new(secret.bytes().to_vec(), algorithm.clone(), name, FUDGE)
                        .map_err(|e| format!("`update.key_algorithm`: {e}"))?,
                )
            }
        };
        Ok(Client { config, signer })
    }

    pub fn config(&self) -> &UpdateConfig {
        &self.config
    }

    fn server(&self) -> String {
        self.config.server_display()
    }

    fn key_display(&self) -> String {
        self.config.key.as_ref().map(|k| k.display_name().to_string()).unwrap_or_default()
    }

    /// Reads one RRset: `fqdn`'s records of type `rtype`.
    pub async fn query(&self, fqdn: &Name, rtype: RecordType) -> Result<Answer, DnsError> {
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = false;
        msg.add_query(Query::query(fqdn.clone(), rtype));
        let fq = fqdn.to_ascii();
        let reply = self.exchange(msg, Operation::Query, &fq).await?;
        match reply.metadata.response_code {
            ResponseCode::NoError => Ok(Answer::Records(reply.answers)),
            ResponseCode::NXDomain => Ok(Answer::NoSuchName),
            ResponseCode::Refused => Err(DnsError::Refused {
                server: self.server(),
                op: Operation::Query,
                fqdn: fq.clone(),
                zone: zone_guess(&fq),
                allow: "allow-query",
                who: self.who(),
            }),
            other => Err(self.rcode_error(other, Operation::Query, &fq, &zone_guess(&fq))),
        }
    }

    /// Replaces the RRset `fqdn`/`rtype` in `zone` by `records` in one UPDATE:
    /// a delete of the whole RRset followed by the adds, which the server
    /// applies atomically. With no records, the RRset is only deleted.
    pub async fn replace_rrset(
        &self,
        zone: &Name,
        fqdn: &Name,
        rtype: RecordType,
        ttl: u32,
        records: Vec<RData>,
    ) -> Result<(), DnsError> {
        let fq = fqdn.to_ascii();
        let zone_text = zone.to_ascii();
        if !zone.zone_of(fqdn) {
            return Err(DnsError::NotZone { server: self.server(), fqdn: fq, zone: zone_text });
        }
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Update);
        msg.metadata.recursion_desired = false;
        let mut zone_q = Query::query(zone.clone(), RecordType::SOA);
        zone_q.set_query_class(DNSClass::IN);
        msg.add_zone(zone_q);

        // RFC 2136 §2.5.2: delete an RRset = class ANY, TTL 0, empty RDATA.
        let mut delete = Record::update0(fqdn.clone(), 0, rtype).into_record_of_rdata();
        delete.dns_class = DNSClass::ANY;
        msg.add_update(delete);
        for rdata in records {
            let mut add = Record::from_rdata(fqdn.clone(), ttl, rdata);
            add.dns_class = DNSClass::IN;
            msg.add_update(add);
        }

        let reply = self.exchange(msg, Operation::Update, &fq).await?;
        match reply.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::Refused => Err(DnsError::Refused {
                server: self.server(),
                op: Operation::Update,
                fqdn: fq,
                zone: zone_text,
                allow: "allow-update",
                who: self.who(),
            }),
            ResponseCode::NotZone => Err(DnsError::NotZone { server: self.server(), fqdn: fq, zone: zone_text }),
            other => Err(self.rcode_error(other, Operation::Update, &fq, &zone_text)),
        }
    }

    fn who(&self) -> String {
        match &self.config.key {
            Some(k) => format!("key `{}`", k.display_name()),
            None => "unsigned updates from this address (set `update.key_name` and `update.key_secret`)".into(),
        }
    }

    fn rcode_error(&self, rcode: ResponseCode, op: Operation, fqdn: &str, zone: &str) -> DnsError {
        match rcode {
            ResponseCode::NotAuth => {
                DnsError::NotAuth { server: self.server(), op, fqdn: fqdn.into(), zone: zone.into() }
            }
            other => DnsError::Rcode { server: self.server(), op, fqdn: fqdn.into(), rcode: rcode_name(other) },
        }
    }

    /// Signs `msg` (with a key), sends it with retries on timeouts and
    /// connection failures, and returns the checked answer.
    async fn exchange(&self, mut msg: Message, op: Operation, fqdn: &str) -> Result<Message, DnsError> {
        let id = msg.metadata.id;
        if self.config.transport == Transport::Udp {
            // Lets a large RRset come back over UDP; the TSIG record follows it.
            let mut edns = Edns::new();
            edns.set_max_payload(UDP_PAYLOAD).set_version(0);
            msg.set_edns(edns);
        }
        let verifier = match &self.signer {
            Some(signer) => msg
                .finalize(signer, now())
                .map_err(|e| DnsError::Build { op, fqdn: fqdn.into(), reason: e.to_string() })?,
            None => None,
        };
        let bytes = msg.to_vec().map_err(|e| DnsError::Build { op, fqdn: fqdn.into(), reason: e.to_string() })?;
        tracing::debug!(server = %self.server(), %op, fqdn, transport = %self.config.transport, "DNS exchange");

        let attempts = self.config.retries + 1;
        let mut last_io = None;
        let mut raw = None;
        for attempt in 1..=attempts {
            match tokio::time::timeout(self.config.timeout, self.send(&bytes, id)).await {
                Ok(Ok(reply)) => {
                    raw = Some(reply);
                    break;
                }
                Ok(Err(e)) => {
                    tracing::debug!(server = %self.server(), attempt, error = %e, "DNS exchange failed");
                    last_io = Some(e);
                }
                Err(_) => {
                    tracing::debug!(server = %self.server(), attempt, "DNS exchange timed out");
                    last_io = None;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
            }
        }
        let Some(raw) = raw else {
            return Err(match last_io {
                Some(e) => DnsError::Io {
                    server: self.server(),
                    op,
                    fqdn: fqdn.into(),
                    transport: self.config.transport,
                    reason: e.to_string(),
                },
                None => DnsError::Timeout {
                    server: self.server(),
                    op,
                    fqdn: fqdn.into(),
                    timeout: humantime::format_duration(self.config.timeout).to_string(),
                    attempts,
                    transport: self.config.transport,
                },
            });
        };
        self.check_answer(&raw, id, verifier, op, fqdn)
    }

    fn check_answer(
        &self,
        raw: &[u8],
        id: u16,
        verifier: Option<TSigVerifier>,
        op: Operation,
        fqdn: &str,
    ) -> Result<Message, DnsError> {
        let malformed = |reason: String| DnsError::Malformed { server: self.server(), op, fqdn: fqdn.into(), reason };
        let reply = Message::from_vec(raw).map_err(|e| malformed(e.to_string()))?;
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            return Err(malformed(format!("answer id {} does not match request id {id}", reply.metadata.id)));
        }
        let rcode = reply.metadata.response_code;
        let tsig_error = reply.signature().and_then(|s| s.data.error);
        let key_rcode = matches!(rcode, ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME);
        if self.signer.is_some() && (tsig_error.is_some() || key_rcode) {
            // Key errors come back unsigned (RFC 8945 §5.3.2): nothing to verify.
            let tsig = tsig_error.as_ref().map(tsig_error_name).unwrap_or_default();
            let codes = [rcode_name(rcode), tsig].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ");
            let hint = match tsig_error {
                Some(TsigError::BadTime) => ": the clocks of berth and the server are more than 300 s apart",
                Some(TsigError::BadKey) => ": the server knows no key of that name and algorithm",
                Some(TsigError::BadSig) => ": the secret does not match the server's",
                _ => "",
            };
            return Err(DnsError::KeyRejected {
                server: self.server(),
                op,
                fqdn: fqdn.into(),
                key: self.key_display(),
                codes,
                hint,
            });
        }
        if let Some(mut verifier) = verifier {
            let bad = |reason: String| DnsError::BadAnswerSignature {
                server: self.server(),
                op,
                fqdn: fqdn.into(),
                key: self.key_display(),
                reason,
            };
            if reply.signature().is_none() {
                return Err(bad("the answer is not signed".into()));
            }
            verifier.verify(raw).map_err(|e| bad(e.to_string()))?;
        }
        Ok(reply)
    }

    async fn send(&self, bytes: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
        let addr = self.resolve().await?;
        match self.config.transport {
            Transport::Tcp => tcp_exchange(addr, bytes).await,
            Transport::Udp => {
                let reply = udp_exchange(addr, bytes, id).await?;
                // A truncated answer (TC) is retried over TCP (RFC 7766).
                if reply.len() > 2 && reply[2] & 0x02 != 0 { tcp_exchange(addr, bytes).await } else { Ok(reply) }
            }
        }
    }

    async fn resolve(&self) -> std::io::Result<SocketAddr> {
        let host = self.config.server.as_str();
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.config.port));
        }
        tokio::net::lookup_host((host, self.config.port))
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot resolve `{host}`: {e}")))?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("`{host}` has no address")))
    }
}

async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("message of {} bytes is too large", bytes.len()))
    })?;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    stream.write_all(&out).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(reading)?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).await.map_err(reading)?;
    Ok(reply)
}

fn reading(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("reading the answer: {e}"))
}

async fn udp_exchange(addr: SocketAddr, bytes: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let unspecified: std::net::IpAddr =
        if addr.is_ipv4() { std::net::Ipv4Addr::UNSPECIFIED.into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(unspecified, 0)).await?;
    socket.connect(addr).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Stray datagrams (a late answer to an earlier try) are skipped.
        if n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Ok(buf[..n].to_vec());
        }
    }
}

/// The zone a query's name probably belongs to, for messages only.
fn zone_guess(fqdn: &str) -> String {
    fqdn.split_once('.').map(|(_, z)| z).filter(|z| !z.is_empty()).unwrap_or(fqdn).to_string()
}

fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => other.to_str().to_ascii_uppercase(),
    }
}

fn tsig_error_name(e: &TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG".into(),
        TsigError::BadKey => "BADKEY".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(code) => format!("TSIG error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::dns::config::UpdateConfig;
    use crate::value::{Value, obj};
    use hickory_proto::rr::rdata::A;

    fn client() -> Client {
        let block = obj([(
            "update",
            Value::List(vec![obj([
                ("server", "127.0.0.1".into()),
                ("port", 5353i64.into()),
                ("key_name", "berth-key".into()),
                ("key_secret", "c2VjcmV0LWtleS1tYXRlcmlhbA==".into()),
            ])]),
        )]);
        Client::new(UpdateConfig::from_provider_block_with(&block, |_| None).unwrap()).unwrap()
    }

    /// A BIND-style rejection: NOTAUTH with an unsigned TSIG carrying BADSIG.
    #[test]
    fn a_rejected_key_names_the_key_and_codes() {
        let c = client();
        let mut reply = Message::new(7, MessageType::Response, OpCode::Update);
        reply.metadata.response_code = ResponseCode::NotAuth;
        let key = Name::from_ascii("berth-key.").unwrap();
        let mut request = Message::new(7, MessageType::Query, OpCode::Update);
        request.finalize(c.signer.as_ref().unwrap(), now()).unwrap();
        let mut sig = request.take_signature().unwrap();
        sig.name = key;
        sig.data.mac = Vec::new();
        sig.data.error = Some(TsigError::BadSig);
        reply.set_signature(sig);
        let raw = reply.to_vec().unwrap();
        let err = c.check_answer(&raw, 7, None, Operation::Update, "micro-search.internal.").unwrap_err();
        assert_eq!(
            err.to_string(),
            "DNS server 127.0.0.1:5353 refused the update for `micro-search.internal.`: TSIG key `berth-key` \
             was not accepted (NOTAUTH, BADSIG): the secret does not match the server's"
        );
    }

    #[test]
    fn an_unsigned_answer_to_a_signed_request_is_refused() {
        let c = client();
        let mut request = Message::new(9, MessageType::Query, OpCode::Update);
        let verifier = request.finalize(c.signer.as_ref().unwrap(), now()).unwrap();
        let mut reply = Message::new(9, MessageType::Response, OpCode::Update);
        reply.add_answer(Record::from_rdata(Name::from_ascii("a.internal.").unwrap(), 1, RData::A(A::new(1, 2, 3, 4))));
        let err = c.check_answer(&reply.to_vec().unwrap(), 9, verifier, Operation::Update, "a.internal.").unwrap_err();
        assert!(matches!(err, DnsError::BadAnswerSignature { .. }), "{err}");
        let err = c.check_answer(&reply.to_vec().unwrap(), 10, None, Operation::Update, "a.internal.").unwrap_err();
        assert!(matches!(err, DnsError::Malformed { .. }), "{err}");
    }

    #[test]
    fn debug_of_a_client_shows_no_secret() {
        let shown = format!("{:?}", client());
        assert!(!shown.contains("c2VjcmV0") && !shown.contains("secret-key-material"), "{shown}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let block = obj([(
            "update",
            Value::List(vec![obj([("server", "127.0.0.1".into()), ("port", 9i64.into()), ("retries", 0i64.into())])]),
        )]);
        let c = Client::new(UpdateConfig::from_provider_block_with(&block, |_| None).unwrap()).unwrap();
        let err = c.query(&Name::from_ascii("x.internal.").unwrap(), RecordType::A).await.unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
