//! `berth validate`: resolve the backend settings, validate, show the result.

use super::*;

pub async fn run(env: &Env) -> CmdResult {
    let config = env.load_config()?;
    let backend = env.backend(Some(&config)).err().unwrap_or_default();
    let mut diags = crate::engine::validate(&config, backend).await;
    // The `watch` block is `berth watch`'s; its values are checked here too.
    if let Err(d) = crate::watch::WatchSettings::from_block(config.root().watch.as_ref()) {
        diags.extend(d);
    }
    if diags.has_errors() {
        return Err(std::mem::take(&mut diags));
    }
    for w in diags.0.iter() {
        eprint!("{}", w.render(env.color));
    }
    print("The configuration is valid.\n");
    Ok(0)
}
