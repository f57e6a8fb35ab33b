//! The plan as Markdown, for the people who review it in a pull request.
//!
//! `berth plan --format markdown` (and `berth show --format markdown FILE`)
//! writes what a CI job posts as a pull-request comment and appends to the
//! GitHub Actions step summary: a summary line (add, change, destroy, hosts
//! replaced), the replaced hosts with the DNS names that follow them, the
//! warnings a reviewer must not miss (destroys, notes), then one collapsed
//! `<details>` section per resource holding the same attribute diff the
//! human plan shows, as a `diff` block so GitHub colours it, then the output
//! and inventory file changes.
//!
//! A GitHub comment holds at most [`GITHUB_COMMENT_LIMIT`] characters. A
//! longer plan is cut at a section boundary (never inside a code block or a
//! `<details>`), with a note saying how many sections were left out and
//! where the full plan is: the job uploads `berth show` of the saved plan as
//! an artifact. Values go through the same rendering as the human plan, so
//! sensitive values show as `(sensitive value)` here too.

use super::render::render_change;
use super::*;
use std::fmt::Write;

/// The most characters GitHub accepts in an issue or pull-request comment
/// body (and so in one step summary that is meant to be one).
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The marker the example workflows look for to update their comment in
/// place instead of adding a new one on every push.
pub fn marker(workspace: &str) -> String {
    format!("<!-- berth-plan workspace={} -->", html(workspace))
}

/// The plan as Markdown, within GitHub's comment limit.
pub fn markdown(plan: &Plan) -> String {
    markdown_within(plan, GITHUB_COMMENT_LIMIT)
}

/// The plan as Markdown in at most `limit` characters.
pub fn markdown_within(plan: &Plan, limit: usize) -> String {
    let (head, sections) = parts(plan);
    let full: usize = count(&head) + sections.iter().map(|s| count(s)).sum::<usize>();
    let mut out = head;
    if full <= limit {
        for s in &sections {
            out.push_str(s);
        }
        return out;
    }
    // Room for the note, whatever the numbers in it.
    let note_room = count(&truncation_note(sections.len(), sections.len())) + 16;
    let budget = limit.saturating_sub(note_room);
    let mut used = count(&out);
    let mut shown = 0;
    for s in &sections {
        let n = count(s);
        if used + n > budget {
            break;
        }
        out.push_str(s);
        used += n;
        shown += 1;
    }
    out.push_str(&truncation_note(sections.len() - shown, sections.len()));
    // The head alone may not fit a tiny limit: cut it, never past the limit.
    if count(&out) > limit {
        out = out.chars().take(limit).collect();
    }
    out
}

fn count(s: &str) -> usize {
    s.chars().count()
}

fn truncation_note(left_out: usize, total: usize) -> String {
    format!(
        "\n> [!NOTE]\n> This plan is too long for a GitHub comment ({GITHUB_COMMENT_LIMIT} characters): \
         {left_out} of its {total} sections are not shown. The full plan is in the workflow run's \
         `berth-plan` artifact (`berth show PLANFILE`).\n"
    )
}

/// `<`, `>`, `&` and `"` escaped, for text inside HTML tags.
fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A fenced block that no backtick run inside `body` can close early.
fn fenced(lang: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    let body = body.trim_end_matches('\n');
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

/// The human diff lines with each line's sign moved to the first column,
/// where GitHub's `diff` highlighting looks for it (`~` becomes `!`).
fn diff_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some((sign, rest)) =
            trimmed.split_once(' ').filter(|(s, _)| ["+", "-", "~", "-/+", "+/-", "<="].contains(s))
        else {
            let _ = writeln!(out, "{line}");
            continue;
        };
        let mark = match sign {
            "+" | "-" => sign,
            _ => "!",
        };
        // The text after the sign stays in its column.
        let _ = writeln!(out, "{mark}{}{rest}", " ".repeat(indent + sign.len()));
    }
    out
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "will be created",
        Action::Read => "will be read during apply",
        Action::Update => "will be updated in-place",
        Action::DeleteThenCreate => "must be replaced",
        Action::CreateThenDelete => "must be replaced (create before destroy)",
        Action::Delete => "will be destroyed",
        Action::NoOp => "will be imported",
    }
}

/// A host: an object with a private address (an `aws_instance`).
fn host_ip(v: Option<&Value>) -> Option<String> {
    let v = v?;
    ["private_ip", "public_ip"].iter().find_map(|k| v.get_str(k).map(str::to_string))
}

/// The addresses a DNS record resolves to, whichever provider's it is.
fn record_values(v: &Value) -> Vec<String> {
    ["records", "addresses"]
        .iter()
        .filter_map(|k| v.get(k).and_then(Value::as_list))
        .flatten()
        .filter_map(|x| x.unmarked().as_str().map(str::to_string))
        .collect()
}

fn record_name(v: &Value) -> Option<String> {
    ["fqdn", "name"].iter().find_map(|k| v.get_str(k).map(str::to_string))
}

/// For each replaced host, the DNS records of the plan that point at its
/// old address and move: `micro-search.internal 10.0.1.4 → new host`.
fn dns_follows(plan: &Plan, host: &ResourceChange) -> Vec<String> {
    let Some(ip) = host_ip(host.before.as_ref()) else { return Vec::new() };
    let mut out = Vec::new();
    for c in plan.changes.iter().filter(|c| matches!(c.action, Action::Update) || c.action.is_replace()) {
        let (Some(b), Some(a)) = (&c.before, &c.after) else { continue };
        if !record_values(b).contains(&ip) {
            continue;
        }
        let name = record_name(b).unwrap_or_else(|| c.addr.to_string());
        let after = record_values(a);
        let to = if after.is_empty() || !a.is_known() { "new host".to_string() } else { after.join(", ") };
        out.push(format!("`{name}` {ip} → {to}"));
    }
    out
}

/// The head (marker, title, summary, hosts, warnings) and the sections
/// that may be left out when the comment is too long, in order.
fn parts(plan: &Plan) -> (String, Vec<String>) {
    let mut head = String::new();
    let _ = writeln!(head, "{}", marker(&plan.workspace));
    let what = if plan.destroy { "destroy plan" } else { "plan" };
    let _ = writeln!(head, "### berth {what} · workspace `{}`\n", plan.workspace);
    if !plan.has_changes() {
        head.push_str("**No changes.** The infrastructure matches the configuration.\n");
        return (head, Vec::new());
    }
    let s = plan.summary();
    let changes: Vec<&ResourceChange> =
        plan.changes.iter().filter(|c| c.action != Action::NoOp || c.import.is_some()).collect();
    let hosts: Vec<&ResourceChange> =
        changes.iter().copied().filter(|c| c.action.is_replace() && host_ip(c.before.as_ref()).is_some()).collect();
    let mut line = format!("**Plan: {}.**", s.counts());
    if !hosts.is_empty() {
        let names: Vec<String> = hosts.iter().map(|h| format!("`{}`", h.addr)).collect();
        let _ = write!(
            line,
            " {} host{} replaced: {}.",
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
    let _ = writeln!(head, "{line}\n");
    if !hosts.is_empty() {
        head.push_str("#### Hosts replaced\n\n");
        for h in &hosts {
            let old = host_ip(h.before.as_ref()).unwrap_or_default();
            let _ = writeln!(head, "- `{}` ({old}, `{}`)", h.addr, h.action.symbol());
            for d in dns_follows(plan, h) {
                let _ = writeln!(head, "  - DNS follows: {d}");
            }
        }
        head.push('\n');
    }
    let mut warnings = Vec::new();
    for c in &changes {
        if c.action == Action::Delete {
            let why = c.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            warnings.push(format!("`{}` will be destroyed{why}", c.addr));
        }
        for n in &c.notes {
            warnings.push(format!("`{}`: {n}", c.addr));
        }
    }
    if !warnings.is_empty() {
        head.push_str("#### Warnings\n\n");
        for w in warnings {
            let _ = writeln!(head, "- {}", w.replace('\n', " "));
        }
        head.push('\n');
    }

    let mut sections = Vec::new();
    for c in &changes {
        let mut body = String::new();
        render_change(&mut body, c);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<details><summary><code>{} {}</code> {}</summary>\n",
            html(c.action.symbol()),
            html(&c.addr.to_string()),
            verb(c.action)
        );
        s.push_str(&fenced("diff", &diff_lines(&body)));
        s.push_str("\n</details>\n");
        sections.push(s);
    }
    let outputs: Vec<String> = plan
        .outputs
        .iter()
        .filter_map(|o| {
            let show_o = |v: &Value| if o.sensitive { "(sensitive value)".to_string() } else { one_line(v) };
            match (&o.before, &o.after) {
                (None, Some(a)) => Some(format!("+ {} = {}", o.name, show_o(a))),
                (Some(b), None) => Some(format!("- {} = {}", o.name, show_o(b))),
                (Some(b), Some(a)) if !a.same_as(b) || a.is_known() != b.is_known() => {
                    Some(format!("! {} = {} -> {}", o.name, show_o(b), show_o(a)))
                }
                _ => None,
            }
        })
        .collect();
    if !outputs.is_empty() {
        sections.push(format!("\n#### Outputs\n\n{}", fenced("diff", &outputs.join("\n"))));
    }
    for i in plan.inventories.iter().filter(|i| !i.diff.is_empty() || i.pending) {
        let mut s =
            format!("\n<details><summary>Inventory <code>{}</code> ({})</summary>\n\n", html(&i.path), html(&i.name));
        if i.pending {
            s.push_str("Rewritten after apply with values known only then.\n\n");
        }
        if !i.diff.is_empty() {
            s.push_str(&fenced("diff", &i.diff));
        }
        s.push_str("\n</details>\n");
        sections.push(s);
    }
    (head, sections)
}

fn one_line(v: &Value) -> String {
    match v {
        Value::Sensitive(_) => "(sensitive value)".into(),
        Value::Unknown => "(known after apply)".into(),
        other => other.to_string().replace('\n', "\\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn change(addr: &str, action: Action, before: Option<Value>, after: Option<Value>) -> ResourceChange {
        ResourceChange {
            addr: addr.parse().unwrap(),
            deposed: None,
            provider: "aws".into(),
            action,
            before,
            after,
            replace_paths: Vec::new(),
            reason: None,
            notes: Vec::new(),
            create_before_destroy: false,
            generation: 0,
            import: None,
            drain_ms: None,
            wave: None,
            gone: None,
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            berth_version: "0".into(),
            lineage: "l".into(),
            prior_serial: Some(1),
            config_digest: String::new(),
            workspace: "pr-7".into(),
            destroy: false,
            targets: Vec::new(),
            variables: BTreeMap::new(),
            changes,
            data: Vec::new(),
            outputs: Vec::new(),
            inventories: Vec::new(),
            dependencies: BTreeMap::new(),
            instance_dependencies: BTreeMap::new(),
            generated_config: String::new(),
            errored: false,
        }
    }

    #[test]
    fn a_replaced_host_names_the_dns_that_follows_it() {
        let host = change(
            "aws_instance.search",
            Action::DeleteThenCreate,
            Some(obj([("private_ip", Value::str("10.0.1.4")), ("ami", Value::str("ami-1"))])),
            Some(obj([("private_ip", Value::Unknown), ("ami", Value::str("ami-2"))])),
        );
        let record = change(
            "aws_route53_record.search",
            Action::Update,
            Some(obj([
                ("fqdn", Value::str("micro-search.internal")),
                ("records", Value::List(vec!["10.0.1.4".into()])),
            ])),
            Some(obj([("fqdn", Value::str("micro-search.internal")), ("records", Value::Unknown)])),
        );
        let md = markdown(&plan(vec![host, record]));
        assert!(md.contains("1 host replaced: `aws_instance.search`"), "{md}");
        assert!(md.contains("DNS follows: `micro-search.internal` 10.0.1.4 → new host"), "{md}");
    }

    #[test]
    fn a_long_plan_is_cut_at_a_section_and_says_so() {
        let changes = (0..400)
            .map(|i| {
                change(
                    &format!("berth_data.n[{i}]"),
                    Action::Create,
                    None,
                    Some(obj([("input", Value::str("x".repeat(300)))])),
                )
            })
            .collect();
        let md = markdown(&plan(changes));
        assert!(md.chars().count() <= GITHUB_COMMENT_LIMIT, "{}", md.len());
        assert!(md.contains("too long for a GitHub comment"), "no note");
        // Every section shown is whole: as many closings as openings.
        assert_eq!(md.matches("<details>").count(), md.matches("</details>").count());
        assert_eq!(md.matches("```").count() % 2, 0);
    }

    #[test]
    fn backticks_in_values_cannot_close_the_fence() {
        let c = change("berth_data.x", Action::Create, None, Some(obj([("input", Value::str("a ``` b"))])));
        let md = markdown(&plan(vec![c]));
        assert!(md.contains("````diff"), "{md}");
    }
}
