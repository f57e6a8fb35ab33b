//! `berth graph`: the resource dependency graph as dot or Mermaid.

use super::*;
use crate::cli::{GraphArgs, GraphFormat};
use crate::graph::Graph;

pub fn run(env: &Env, args: &GraphArgs) -> CmdResult {
    let config = env.load_config()?;
    let graph = Graph::build(&config)?;
    print(&match args.format {
        GraphFormat::Dot => graph.to_dot(),
        GraphFormat::Mermaid => graph.to_mermaid(),
    });
    Ok(0)
}
