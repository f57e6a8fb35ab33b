//! IP network functions: `cidrhost`, `cidrnetmask`, `cidrsubnet` and
//! `cidrsubnets`, for IPv4 and IPv6 prefixes.

use super::*;

/// A prefix as integers: IPv4 addresses live in the low 32 bits.
struct Cidr {
    addr: u128,
    len: u32,
    /// 32 or 128.
    bits: u32,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let net: IpNet = s
            .parse()
            .ok()
            .or_else(|| without_leading_zeros(s)?.parse().ok())
            .ok_or_else(|| format!("prefix {} is not a valid CIDR", q(s)))?;
        // Host bits in the prefix are ignored, as Go's ParseCIDR does.
        Ok(match net.trunc() {
            IpNet::V4(n) => Cidr {
                addr: u128::from(u32::from(n.addr())),
                len: u32::from(n.prefix_len()),
                bits: 32,
            },
            IpNet::V6(n) => Cidr {
                addr: u128::from(n.addr()),
                len: u32::from(n.prefix_len()),
                bits: 128,
            },
        })
    }

    fn host_bits(&self) -> u32 {
        self.bits - self.len
    }

    fn family(&self) -> &'static str {
        if self.bits == 32 { "IPv4" } else { "IPv6" }
    }

    fn show_addr(&self, addr: u128) -> String {
        if self.bits == 32 {
            Ipv4Addr::from(addr as u32).to_string()
        } else {
            Ipv6Addr::from(addr).to_string()
        }
    }
}

/// Terraform reads IPv4 octets with leading zeros as decimal; Rust's parser
/// refuses them.
fn without_leading_zeros(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| match p.trim_start_matches('0') {
            "" => "0",
            t => t,
        })
        .collect();
    Some(format!("{}/{len}", parts.join(".")))
}

/// The lowest `bits` bits set.
fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

pub(super) fn cidrhost(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let hostnum = a.int(1)?;
    let host_bits = net.host_bits();
    let mask = low_mask(host_bits);
    let magnitude = u128::from(hostnum.unsigned_abs());
    // Negative numbers count back from the end: -1 is the last address.
    let fits = if hostnum >= 0 {
        magnitude <= mask
    } else {
        magnitude - 1 <= mask
    };
    if !fits {
        return Err(format!(
            "host number {} does not fit in the {} host bits of {}",
            qn(hostnum),
            host_bits,
            q(&prefix)
        ));
    }
    let offset = if hostnum >= 0 {
        magnitude
    } else {
        magnitude.wrapping_neg() & mask
    };
    Ok(Value::String(net.show_addr(net.addr | offset)))
}

pub(super) fn cidrnetmask(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    if net.bits != 32 {
        return Err(format!(
            "only IPv4 prefixes have a netmask, and {} is IPv6",
            q(&prefix)
        ));
    }
    let mask = !low_mask(net.host_bits()) & low_mask(32);
    Ok(Value::String(net.show_addr(mask)))
}

pub(super) fn cidrsubnet(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let newbits = a.int(1)?;
    let netnum = a.int(2)?;
    if newbits < 0 {
        return Err(format!("newbits must not be negative, got {}", qn(newbits)));
    }
    if netnum < 0 {
        return Err(format!("netnum must not be negative, got {}", qn(netnum)));
    }
    let new_len = u64::from(net.len) + newbits as u64;
    if new_len > u64::from(net.bits) {
        return Err(format!(
            "cannot extend {} by {} bits: an {} prefix has at most {} bits",
            q(&prefix),
            qn(newbits),
            net.family(),
            net.bits
        ));
    }
    let newbits = newbits as u32;
    if netnum as u128 > low_mask(newbits) {
        return Err(format!(
            "netnum {} does not fit in {} new bits (the largest is {})",
            qn(netnum),
            qn(newbits),
            qn(low_mask(newbits))
        ));
    }
    let new_len = new_len as u32;
    let offset = (netnum as u128)
        .checked_shl(net.bits - new_len)
        .unwrap_or(0);
    Ok(Value::String(format!(
        "{}/{new_len}",
        net.show_addr(net.addr | offset)
    )))
}

pub(super) fn cidrsubnets(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let last_offset = low_mask(net.host_bits());
    // The next free offset inside the prefix; None once the space is used up
    // to its very last address.
    let mut next: Option<u128> = Some(0);
    let mut out = Vec::new();
    for i in 1..a.len() {
        let newbits = a.int(i)?;
        if newbits < 0 {
            return Err(format!(
                "{} (newbits) must not be negative, got {}",
                arg_name(i),
                qn(newbits)
            ));
        }
        let new_len = u64::from(net.len) + newbits as u64;
        if new_len > u64::from(net.bits) {
            return Err(format!(
                "{} would extend {} to a /{} prefix, longer than an {} address",
                arg_name(i),
                q(&prefix),
                new_len,
                net.family()
            ));
        }
        let new_len = new_len as u32;
        let size_mask = low_mask(net.bits - new_len);
        // Each subnet starts at the next address aligned to its own size.
        let start = next.and_then(|p| {
            if p & size_mask == 0 {
                Some(p)
            } else {
                (p | size_mask).checked_add(1)
            }
        });
        let end = start
            .and_then(|s| s.checked_add(size_mask))
            .filter(|e| *e <= last_offset);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!(
                "not enough address space left in {} for a /{} subnet ({})",
                q(&prefix),
                new_len,
                arg_name(i)
            ));
        };
        out.push(Value::String(format!(
            "{}/{new_len}",
            net.show_addr(net.addr | start)
        )));
        next = end.checked_add(1);
    }
    Ok(Value::List(out))
}

#[cfg(test)]
mod tests {
    use crate::config::functions::test_support::*;

    #[test]
    fn cidrsubnet_matches_terraform_examples() {
        assert_eq!(
            ok("cidrsubnet", vec![s("172.16.0.0/12"), n(4.0), n(2.0)]),
            s("172.18.0.0/16")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("10.1.2.0/24"), n(4.0), n(15.0)]),
            s("10.1.2.240/28")
        );
        assert_eq!(
            ok(
                "cidrsubnet",
                vec![s("fd00:fd12:3456:7890::/56"), n(16.0), n(162.0)]
            ),
            s("fd00:fd12:3456:7800:a200::/72")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("10.0.0.0/8"), n(8.0), n(2.0)]),
            s("10.2.0.0/16")
        );
        // Numbers given as strings convert, as in Terraform.
        assert_eq!(
            ok("cidrsubnet", vec![s("10.0.0.0/8"), s("8"), s("2")]),
            s("10.2.0.0/16")
        );
        // Host bits in the prefix are dropped.
        assert_eq!(
            ok("cidrsubnet", vec![s("10.1.2.99/24"), n(0.0), n(0.0)]),
            s("10.1.2.0/24")
        );
        // Leading zeros are decimal.
        assert_eq!(
            ok("cidrsubnet", vec![s("010.001.0.0/16"), n(8.0), n(1.0)]),
            s("10.1.1.0/24")
        );
        // Edges of the address space.
        assert_eq!(
            ok("cidrsubnet", vec![s("::/0"), n(128.0), n(5.0)]),
            s("::5/128")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("0.0.0.0/0"), n(32.0), n(4294967295.0)]),
            s("255.255.255.255/32")
        );
        assert_eq!(ok("cidrsubnet", vec![s("::/0"), n(0.0), n(0.0)]), s("::/0"));
    }

    #[test]
    fn cidrsubnet_errors() {
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/33"), n(1.0), n(0.0)]),
            "cidrsubnet: prefix `10.0.0.0/33` is not a valid CIDR"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0"), n(1.0), n(0.0)]),
            "cidrsubnet: prefix `10.0.0.0` is not a valid CIDR"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/30"), n(4.0), n(0.0)]),
            "cidrsubnet: cannot extend `10.0.0.0/30` by `4` bits: an IPv4 prefix has at most 32 bits"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(4.0), n(16.0)]),
            "cidrsubnet: netnum `16` does not fit in `4` new bits (the largest is `15`)"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(-1.0), n(0.0)]),
            "cidrsubnet: newbits must not be negative, got `-1`"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(4.0), n(-1.0)]),
            "cidrsubnet: netnum must not be negative, got `-1`"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(1.5), n(0.0)]),
            "cidrsubnet: argument 2 must be a whole number, got `1.5`"
        );
        assert_eq!(
            err("cidrsubnet", vec![l(vec![]), n(1.0), n(0.0)]),
            "cidrsubnet: argument 1 must be a string, got list"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("::/0"), n(129.0), n(0.0)]),
            "cidrsubnet: cannot extend `::/0` by `129` bits: an IPv6 prefix has at most 128 bits"
        );
    }

    #[test]
    fn cidrhost_matches_terraform_examples() {
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(16.0)]),
            s("10.12.112.16")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(268.0)]),
            s("10.12.113.12")
        );
        assert_eq!(
            ok(
                "cidrhost",
                vec![s("fd00:fd12:3456:7890:00a2::/72"), n(34.0)]
            ),
            s("fd00:fd12:3456:7890::22")
        );
        assert_eq!(ok("cidrhost", vec![s("10.0.0.0/8"), n(2.0)]), s("10.0.0.2"));
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/8"), n(-2.0)]),
            s("10.255.255.254")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(-2.0)]),
            s("10.12.127.254")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/24"), n(-256.0)]),
            s("10.0.0.0")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/24"), n(255.0)]),
            s("10.0.0.255")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.7/32"), n(0.0)]),
            s("10.0.0.7")
        );
        assert_eq!(
            ok("cidrhost", vec![s("::/0"), n(-1.0)]),
            s("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn cidrhost_errors() {
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.0/24"), n(256.0)]),
            "cidrhost: host number `256` does not fit in the 8 host bits of `10.0.0.0/24`"
        );
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.0/24"), n(-257.0)]),
            "cidrhost: host number `-257` does not fit in the 8 host bits of `10.0.0.0/24`"
        );
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.1/32"), n(1.0)]),
            "cidrhost: host number `1` does not fit in the 0 host bits of `10.0.0.1/32`"
        );
        assert_eq!(
            err("cidrhost", vec![s("nonsense"), n(1.0)]),
            "cidrhost: prefix `nonsense` is not a valid CIDR"
        );
    }

    #[test]
    fn cidrnetmask_works_for_ipv4_only() {
        assert_eq!(
            ok("cidrnetmask", vec![s("172.16.0.0/12")]),
            s("255.240.0.0")
        );
        assert_eq!(
            ok("cidrnetmask", vec![s("10.0.0.0/32")]),
            s("255.255.255.255")
        );
        assert_eq!(ok("cidrnetmask", vec![s("0.0.0.0/0")]), s("0.0.0.0"));
        assert_eq!(
            err("cidrnetmask", vec![s("fd00::/8")]),
            "cidrnetmask: only IPv4 prefixes have a netmask, and `fd00::/8` is IPv6"
        );
    }

    #[test]
    fn cidrsubnets_matches_terraform_examples() {
        assert_eq!(
            ok(
                "cidrsubnets",
                vec![s("10.1.0.0/16"), n(4.0), n(4.0), n(8.0), n(4.0)]
            ),
            ls(&[
                "10.1.0.0/20",
                "10.1.16.0/20",
                "10.1.32.0/24",
                "10.1.48.0/20"
            ])
        );
        assert_eq!(
            ok(
                "cidrsubnets",
                vec![
                    s("fd00:fd12:3456:7890::/56"),
                    n(16.0),
                    n(16.0),
                    n(16.0),
                    n(32.0)
                ]
            ),
            ls(&[
                "fd00:fd12:3456:7800::/72",
                "fd00:fd12:3456:7800:100::/72",
                "fd00:fd12:3456:7800:200::/72",
                "fd00:fd12:3456:7800:300::/88",
            ])
        );
        assert_eq!(ok("cidrsubnets", vec![s("10.0.0.0/8")]), l(vec![]));
        assert_eq!(
            ok("cidrsubnets", vec![s("::/0"), n(1.0), n(1.0)]),
            ls(&["::/1", "8000::/1"])
        );
        assert_eq!(
            ok("cidrsubnets", vec![s("0.0.0.0/0"), n(0.0)]),
            ls(&["0.0.0.0/0"])
        );
        // A small subnet followed by a large one skips to the next boundary.
        assert_eq!(
            ok("cidrsubnets", vec![s("10.0.0.0/24"), n(4.0), n(1.0)]),
            ls(&["10.0.0.0/28", "10.0.0.128/25"])
        );
    }

    #[test]
    fn cidrsubnets_errors() {
        assert_eq!(
            err(
                "cidrsubnets",
                vec![s("10.0.0.0/24"), n(1.0), n(1.0), n(1.0)]
            ),
            "cidrsubnets: not enough address space left in `10.0.0.0/24` for a /25 subnet (argument 4)"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("::/0"), n(1.0), n(1.0), n(1.0)]),
            "cidrsubnets: not enough address space left in `::/0` for a /1 subnet (argument 4)"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("10.0.0.0/24"), n(9.0)]),
            "cidrsubnets: argument 2 would extend `10.0.0.0/24` to a /33 prefix, longer than an IPv4 address"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("10.0.0.0/24"), n(-1.0)]),
            "cidrsubnets: argument 2 (newbits) must not be negative, got `-1`"
        );
    }
}
