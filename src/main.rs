//! The `berth` binary: parse arguments, install the interrupt handler, run
//! one command, map the result to an exit code (0 ok, 1 error, 2 changes
//! present under `--detailed-exitcode`, 130/143 stopped by SIGINT/SIGTERM).

use berth::cli::{Cli, Command, StateSubcommand};
use berth::commands::{self, Env};
use berth::interrupt::Interrupt;
use clap::{CommandFactory, Parser};

fn main() {
    let cli = Cli::parse_from(berth::cli::normalize_args(std::env::args()));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "warn,aws_config=error,aws_smithy_runtime=error".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Some(dir) = &cli.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("Error: cannot change to `{}`: {e}", dir.display());
        std::process::exit(1);
    }
    let mut env = Env::from_env(cli.no_color);
    env.backend_config = cli.backend_config.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    // A signal stops the run at once, freeing the state locks it holds
    // first, except a first Ctrl-C during the apply walk, which the walk
    // answers itself (see `berth::interrupt`). This runs on a worker
    // thread, so it works while the command blocks the main one (a
    // confirmation prompt).
    match runtime.block_on(async { Interrupt::install() }) {
        Ok((interrupt, mut stopper)) => {
            env.interrupt = interrupt;
            runtime.spawn(async move {
                let how = stopper.wait().await;
                let released = stopper.release_locks().await;
                eprintln!("\n{how}: stopped before finishing; what completed is recorded in the state journal.");
                for uri in released.freed {
                    eprintln!("Released the state lock on `{uri}`.");
                }
                for f in released.failed {
                    eprintln!("Error: could not release the state lock on {f}; remove it with `berth force-unlock`.");
                }
                berth::telemetry::api_stats::write_if_requested();
                std::process::exit(how.exit_code());
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for signals; a stopped run may leave its state lock behind"),
    }
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Validate => commands::validate::run(&env).await,
            Command::Plan(a) => commands::plan::run(&env, a).await,
            Command::Apply(a) => commands::apply::run(&env, a).await,
            Command::Destroy(a) => commands::apply::destroy(&env, a).await,
            Command::Show(a) => commands::show::run(&env, a).await,
            Command::Output(a) => commands::output::run(&env, a).await,
            Command::Graph(a) => commands::graph::run(&env, a),
            Command::Fmt(a) => commands::fmt::run(&env, a),
            Command::Inventory(a) => commands::inventory::run(&env, a).await,
            Command::Init(a) => commands::init::run(&env, a).await,
            Command::State(StateSubcommand::Edit(c)) => commands::state::run(&env, c).await,
            Command::State(StateSubcommand::Pull) => commands::state_transfer::pull(&env).await,
            Command::State(StateSubcommand::Push(a)) => commands::state_transfer::push(&env, a).await,
            Command::State(StateSubcommand::MigrateTerraform(a)) => commands::migrate_terraform::run(&env, a).await,
            Command::Workspace(c) => commands::workspace::run(&env, c).await,
            Command::Import(a) => commands::import::run(&env, a).await,
            Command::ForceUnlock(a) => commands::state::force_unlock(&env, &a.id).await,
            Command::Watch(a) => commands::watch::run(&env, a).await,
            Command::Completions(a) => {
                clap_complete::generate(a.shell, &mut Cli::command(), "berth", &mut std::io::stdout());
                Ok(0)
            }
        }
    });
    berth::telemetry::api_stats::write_if_requested();
    let code = match result {
        Ok(code) => code,
        Err(diags) => {
            eprint!("{}", diags.render(env.color));
            berth::ci::annotate(&diags);
            1
        }
    };
    std::process::exit(code);
}
