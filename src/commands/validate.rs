//! `berth validate`: resolve the backend settings, validate, show the result.

use super::*;

pub async fn run(env: &Env) -> CmdResult {
    let config = env.load_config()?;
    let backend = env.backend(Some(&config)).err().unwrap_or_default();
    let mut diags = crate::engine::validate(&config, backend).await;
    if diags.has_errors() {
        return Err(std::mem::take(&mut diags));
    }
    for w in diags.0.iter() {
        eprint!("{}", w.render(env.color));
    }
    print("The configuration is valid.\n");
    Ok(0)
}
