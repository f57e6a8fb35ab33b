//! Command-line types (clap): data only, no logic.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "Provision VPCs, hosts and private DNS for Kamal deploys, and write their server inventory.")]
pub struct Cli {
    /// Run as if started in DIR (like `terraform -chdir`).
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Never use colour (also honoured: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Set a backend setting, overriding the `backend` block:
    /// `--backend-config bucket=acme-state`, or a file of `name = value`
    /// lines: `--backend-config prod.s3.tfbackend` (repeatable; later wins).
    #[arg(long = "backend-config", global = true, value_name = "KEY=VALUE|FILE")]
    pub backend_config: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the configuration: syntax, references, types, provider arguments.
    Validate,
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply after confirmation.
    Apply(ApplyArgs),
    /// Destroy everything the state manages, in reverse dependency order.
    Destroy(DestroyArgs),
    /// Show a saved plan, or the current state.
    Show(ShowArgs),
    /// Print the root module's outputs.
    Output(OutputArgs),
    /// Print the resource dependency graph.
    Graph(GraphArgs),
    /// Rewrite `*.hcl` and `*.tf` files in the canonical format.
    Fmt(FmtArgs),
    /// Write or check the server inventories (Kamal, Ansible, JSON, hosts) from the state.
    Inventory(InventoryArgs),
    /// Check the backend, or move local state into it (`--migrate-state`).
    Init(InitArgs),
    /// Inspect and edit the state.
    #[command(subcommand)]
    State(StateSubcommand),
    /// Manage workspaces: one state each (e.g. staging, production).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Bring an existing object under berth: read it by ID into the state at
    /// ADDRESS (which needs a resource block); the next apply adds berth's
    /// ownership marks.
    Import(ImportArgs),
    /// Remove a state lock left by a process that is gone.
    ForceUnlock(ForceUnlockArgs),
    /// Watch the fleet: detect drift and report it (`mode = "observe"`), or
    /// heal it within guards (`mode = "heal"`); `--once` runs one cycle.
    Watch(WatchArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a root variable: `--var region=eu-west-1` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file (HCL `name = value` lines as in `*.tfvars`, or JSON).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct LockArgs {
    /// How long to wait for a state lock held by another run (`30s`, `5m`).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Args, Debug, Clone)]
pub struct PlanFlags {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Plan only these resources (and what they depend on). Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Replace this resource even if nothing changed: one instance
    /// (`aws_instance.web[0]`) or all of them (`aws_instance.web`,
    /// `aws_instance.web[*]`). Repeatable.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Replace the instances of every counted or `for_each`'d resource in
    /// waves of N, as `lifecycle { rolling { max_unavailable = N } }` does
    /// (a resource's own `rolling` block wins).
    #[arg(long = "rolling", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rolling: Option<u32>,
    /// Read the real objects before planning (`--refresh=false` skips it).
    #[arg(long = "refresh", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub refresh: bool,
    /// How many provider operations run at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub flags: PlanFlags,
    /// Plan to destroy everything.
    #[arg(long)]
    pub destroy: bool,
    /// Save the plan to FILE for `berth apply FILE`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
    /// Print the plan as JSON on stdout (schema: docs/plan-json.md); same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// How to print the plan: human (default), json, or markdown (for a pull-request comment).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<PlanFormat>,
    /// Write a resource block for each `import` block whose address has
    /// none into FILE (a new file); in the configuration's directory as
    /// `*.hcl`, the plan then includes those imports.
    #[arg(long = "generate-config-out", value_name = "FILE")]
    pub generate_config_out: Option<PathBuf>,
}

/// How `plan` and `show` print a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    /// GitHub-flavoured Markdown within a comment's size limit.
    Markdown,
}

impl PlanFormat {
    /// `--format`, with the older `--json` flag meaning `--format json`.
    pub fn chosen(format: Option<PlanFormat>, json: bool) -> PlanFormat {
        match (format, json) {
            (Some(f), _) => f,
            (None, true) => PlanFormat::Json,
            (None, false) => PlanFormat::Human,
        }
    }
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub flags: PlanFlags,
    /// Apply without asking.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Destroy everything (same as `berth destroy`).
    #[arg(long)]
    pub destroy: bool,
    /// A plan saved with `berth plan --out`.
    pub planfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub flags: PlanFlags,
    /// Destroy without asking.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Print as JSON; same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// How to print a saved plan: human (default), json, or markdown.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<PlanFormat>,
    /// A saved plan; without it, the state is shown.
    pub planfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    #[arg(long)]
    pub json: bool,
    /// Print a string output without quotes.
    #[arg(long)]
    pub raw: bool,
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Exit 1 (and change nothing) when a file is not formatted.
    #[arg(long)]
    pub check: bool,
    /// Show the changes as a diff.
    #[arg(long)]
    pub diff: bool,
    /// Files or directories (default: the working directory).
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// One inventory: print it (or write it with `--out`).
    pub name: Option<String>,
    /// Render in another format: kamal, ansible, json, hosts.
    #[arg(long)]
    pub format: Option<String>,
    /// Write to FILE instead of the configured path.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 1 and print a diff when a file on disk differs from the state.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List the objects in the state.
    List,
    /// Show one object's attributes.
    Show { address: String },
    /// Forget objects without destroying them.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Rename an object (after renaming its block).
    Mv {
        from: String,
        to: String,
        #[command(flatten)]
        lock: LockArgs,
    },
}

/// `berth state ...`: the editing commands, and moving whole states in and out.
#[derive(Subcommand, Debug)]
pub enum StateSubcommand {
    #[command(flatten)]
    Edit(StateCommand),
    /// Print the current state (with any journal folded in) as JSON on stdout.
    Pull,
    /// Replace the state with FILE (`-` for stdin). Refuses an older serial
    /// or another lineage without `--force`.
    Push(PushArgs),
    /// Make this workspace's state from a Terraform state (version 4):
    /// the same objects at the same addresses, nothing recreated.
    MigrateTerraform(MigrateTerraformArgs),
}

#[derive(Args, Debug)]
pub struct MigrateTerraformArgs {
    /// A `terraform.tfstate` file, or `-` for the output of `terraform state pull`.
    pub path: PathBuf,
    /// Replace a berth state that already manages objects.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// A state file, or `-` to read standard input.
    pub file: PathBuf,
    /// Push even an older serial or another lineage.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Move every workspace's local state into the configured backend (the local copies are renamed `*.json.migrated`).
    #[arg(long = "migrate-state")]
    pub migrate_state: bool,
    /// Where the local states are (default: `state`).
    #[arg(long = "from", value_name = "DIR", requires = "migrate_state")]
    pub from: Option<PathBuf>,
    /// Overwrite a state the backend already holds for a workspace.
    #[arg(long, requires = "migrate_state")]
    pub force: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// List the workspaces; `*` marks the selected one.
    List,
    /// Print the selected workspace.
    Show,
    /// Create a workspace with an empty state, and select it.
    New { name: String },
    /// Select a workspace (saved in `.berth/workspace`; `BERTH_WORKSPACE` wins).
    Select { name: String },
    /// Delete a workspace's state; refuses one that still manages objects.
    Delete {
        name: String,
        /// Delete even if the state still lists objects (they are not destroyed).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Where the object goes: `aws_instance.web`, `aws_instance.web["a"]`, `module.app.aws_vpc.main`.
    pub address: String,
    /// The object's id as its provider knows it: `vpc-0abc`, `i-0123`, `Z123_www.example.com_A`.
    pub id: String,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WatchArgs {
    #[command(subcommand)]
    pub action: Option<WatchAction>,
    #[command(flatten)]
    pub run: WatchRunArgs,
}

#[derive(Args, Debug, Clone)]
pub struct WatchRunArgs {
    /// Run one cycle and exit: 0 no drift, 2 drift found, 1 error.
    #[arg(long)]
    pub once: bool,
    /// Decide and report, change nothing (no heal, nothing remembered).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// `observe` (report only) or `heal`; overrides `watch { mode }`.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Time between cycles (`5m`); overrides `watch { interval }`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub interval: Option<std::time::Duration>,
    /// Where the metrics and health endpoints listen; overrides `watch { listen }`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Print each event as a JSON line on stdout (the webhook payload).
    #[arg(long)]
    pub json: bool,
    /// Where `approve = "manual"` saves the plans it asks you to apply.
    #[arg(long = "plan-dir", value_name = "DIR", default_value = ".berth/watch")]
    pub plan_dir: PathBuf,
    /// How many provider operations a heal runs at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Subcommand, Debug)]
pub enum WatchAction {
    /// Stop healing an object (or everything) for a while; drift is still reported.
    Pause {
        /// The resource instance address (`module.search.aws_instance.this`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        address: Option<String>,
        /// Pause everything.
        #[arg(long)]
        all: bool,
        /// How long (`2h`, `30m`).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Why, for the people the pause is announced to.
        #[arg(long)]
        reason: String,
    },
    /// End a pause made by `berth watch pause`.
    Resume {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        address: Option<String>,
        /// End every pause.
        #[arg(long)]
        all: bool,
    },
    /// Let the watcher heal a quarantined object again.
    Release { address: String },
    /// Print what the watcher remembers: open drift, pauses, quarantines, heals.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ForceUnlockArgs {
    /// The lock id printed by the run that is blocked.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// Accepts Terraform's single-dash long flags (`-out=FILE`, `-auto-approve`)
/// so CI scripts port over: `-word...` becomes `--word...`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen_dashdash = false;
    let args = args
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 || seen_dashdash {
                return a;
            }
            if a == "--" {
                seen_dashdash = true;
                return a;
            }
            let bytes = a.as_bytes();
            let long_single = bytes.len() > 2
                && bytes[0] == b'-'
                && bytes[1].is_ascii_lowercase()
                && bytes[2] != b'='
                && a[1..].split('=').next().is_some_and(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            if long_single { format!("-{a}") } else { a }
        })
        .collect::<Vec<_>>();
    hoist_backend_config(args)
}

/// Moves every `--backend-config` to the front: clap replaces a global
/// flag's values given before the subcommand with those given after it,
/// and Terraform users write `-backend-config` after the command while
/// scripts may give others before it. All of them count.
fn hoist_backend_config(args: Vec<String>) -> Vec<String> {
    let mut hoisted = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.into_iter().enumerate();
    while let Some((i, a)) = it.next() {
        if i == 0 || a == "--" {
            rest.push(a);
            if i > 0 {
                rest.extend(it.by_ref().map(|(_, a)| a));
            }
            continue;
        }
        if a == "--backend-config" {
            hoisted.push(a);
            if let Some((_, v)) = it.next() {
                hoisted.push(v);
            }
        } else if a.starts_with("--backend-config=") {
            hoisted.push(a);
        } else {
            rest.push(a);
        }
    }
    let mut out = Vec::with_capacity(rest.len() + hoisted.len());
    let mut rest = rest.into_iter();
    out.extend(rest.next());
    out.extend(hoisted);
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_spellings_are_accepted() {
        let args = normalize_args(
            ["berth", "apply", "-auto-approve", "-out=x.plan", "-C", "dir", "-var", "a=b", "--", "-keep"].map(String::from),
        );
        assert_eq!(args, ["berth", "apply", "--auto-approve", "--out=x.plan", "-C", "dir", "--var", "a=b", "--", "-keep"]);
    }

    #[test]
    fn backend_config_counts_before_and_after_the_command() {
        let args = normalize_args(
            ["berth", "--backend-config", "a=1", "plan", "-backend-config=b.tfbackend", "-var", "x=y", "--", "--backend-config"]
                .map(String::from),
        );
        assert_eq!(
            args,
            ["berth", "--backend-config", "a=1", "--backend-config=b.tfbackend", "plan", "--var", "x=y", "--", "--backend-config"]
        );
        let cli = Cli::parse_from(normalize_args(
            ["berth", "--backend-config", "a=1", "validate", "-backend-config=b.tfbackend"].map(String::from),
        ));
        assert_eq!(cli.backend_config, ["a=1", "b.tfbackend"]);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
