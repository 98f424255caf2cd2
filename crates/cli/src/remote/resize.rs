//! `dozen ps:resize [TYPE=SIZE...]` (also `ps:type`): show or set the size of process types.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use dozen_api::Sizes;
use reqwest::Method;

use super::{AppArgs, path, print, table};
use crate::client::Client;

/// With no changes, show each type's size; with `TYPE=SIZE` changes, resize (the types named
/// restart with the new limits) and show the result.
pub fn ps_resize(changes: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let client = Client::from_env()?;
    let v: Sizes = if changes.is_empty() {
        client.get(&path(app, "/formation/sizes"))?
    } else {
        let mut body = BTreeMap::new();
        for c in changes {
            let (t, size) = c
                .split_once('=')
                .filter(|(t, size)| !t.is_empty() && !size.is_empty())
                .with_context(|| format!("`{c}`: expected TYPE=SIZE, e.g. web=2x"))?;
            body.insert(t.to_string(), size.to_string());
        }
        client.call(Method::PATCH, &path(app, "/formation/sizes"), &body)?
    };
    print(args.json, &v, |v| {
        let mut rows = vec![vec![
            "TYPE".into(),
            "SIZE".into(),
            "MEMORY".into(),
            "CPU".into(),
            "PROCESSES".into(),
        ]];
        for (t, size) in &v.sizes {
            rows.push(vec![
                t.clone(),
                size.size.clone(),
                size.memory_text.clone(),
                size.cpu.clone(),
                size.pids.to_string(),
            ]);
        }
        if rows.len() == 1 {
            println!("{app} has no process types yet (deploy first)");
        } else {
            if !changes.is_empty() {
                println!(
                    "resized {app}; the processes of the types named restart with their new limits"
                );
            }
            table(&rows);
        }
        match &v.warning {
            Some(w) => eprintln!("warning: {w}"),
            None => println!("limits enforced with {}", v.limits),
        }
    });
    Ok(ExitCode::SUCCESS)
}
