//! Part 4: a deployment to look at. A regional hub on a throwaway
//! PostgreSQL/PostGIS and two field nodes, each the real binary, seeded
//! with officers' reports and photos, an assignment and a river gauge —
//! then the addresses of their pages and the demo accounts, until Ctrl-C
//! (or at once with `--exit`, as the tests run it).

use anyhow::{Context, Result};
use sentinel::deploy::{seed, Binaries, Deployment, Plan};

pub fn run(exit: bool) -> Result<()> {
    println!("\n== Part 4: a deployment to look at\n");
    let bins = Binaries::beside_current_exe()
        .context("the demo needs the node and hub binaries beside it (scripts/demo builds them)")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let plan = Plan {
            hub_rules: Some(seed::RULES.to_string()),
            // The nodes keep in sync with the hub by themselves, as an
            // officer's would: a report shows on the hub's timeline live.
            background_sync: true,
            ..Plan::default()
        };
        let d = match Deployment::start(&bins, &plan).await {
            Ok(d) => d,
            // Only PostgreSQL failing to start is a reason to skip; any
            // other failure (a hub that does not come up on it) is one.
            Err(e) if format!("{e:#}").starts_with("no PostgreSQL with PostGIS could be started") => {
                println!("(skipped: {e:#})");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let seeded = seed::seed(&d).await?;
        println!(
            "A hub and two field nodes are running, seeded with {} reports (half with photos), \
             an assignment and {} river-gauge readings.\n",
            seeded.events, seeded.readings
        );
        if let (Some(url), Some(hub)) = (d.hub_url(), d.hub.as_ref()) {
            println!("Hub (admin's pages):  {url}");
            for a in &hub.accounts {
                println!("    {:<8} {:<22} ({})", a.name, a.password, a.role);
            }
        }
        for (i, n) in d.nodes.iter().enumerate() {
            println!(
                "Node {} (officer's pages): {}",
                n.name,
                d.node_url(i).unwrap_or_default()
            );
            println!(
                "    {:<8} {:<22} (the device's officer)",
                n.officer.name, n.officer.password
            );
        }
        if exit {
            println!("\n(--exit: stopping the deployment.)");
            return Ok(());
        }
        println!("\nOpen the addresses above in a browser. Ctrl-C stops everything and removes its data.");
        tokio::signal::ctrl_c().await?;
        println!("Stopping.");
        Ok::<(), anyhow::Error>(())
    })
}
