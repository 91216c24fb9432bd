//! `user add`, `user reset-password`, `user disable`, `user enable`,
//! `user list`, `user purge-tokens`: accounts for the HTTP API.
//!
//! Passwords come from `SENTINEL_USER_PASSWORD`, else, on a terminal, are
//! asked for twice with echo off, else are the first line of standard
//! input (`sentinel_http::people::new_password`); never a default.
//!
//! An account is a name and an argon2id password hash, kept in this
//! node's store only. Its role is not set here: roles are `role_grant`
//! entries a hub signs (`sentinel-hub user add NAME --role ROLE`, or an
//! admin on the hub's API), and they reach this node by sync. The one
//! exception is `user add NAME --device-officer`: an officer on this
//! device until a hub's grant names them (`sentinel_node::roles`). Several
//! accounts may be device officers — a crew sharing a device each signs
//! in as themselves, so every entry names who made it; one would add no
//! safety, since whoever runs this command can reset its password.

use anyhow::{bail, Result};
use sentinel_http::people::{check_name, hash_password};
use sentinel_node::node::Node;
use sentinel_schema::access::role_name;
use sentinel_schema::PersonRole;

use sentinel_node::clock::now_ms;

use super::fmt::print_json;

/// A new password: `SENTINEL_USER_PASSWORD`, else the terminal (no
/// echo), else the first line of standard input. Never a default.
fn password() -> Result<String> {
    Ok(sentinel_http::people::new_password(
        "SENTINEL_USER_PASSWORD",
    )?)
}

fn roles(node: &Node) -> Result<std::collections::BTreeMap<String, PersonRole>> {
    let ca = node.dir().join(sentinel_node::node::CA_FILE);
    let ca = if ca.exists() {
        Some(sentinel_certs::CaCert::load(&ca)?)
    } else {
        None
    };
    Ok(sentinel_node::roles::roles(node.store(), ca.as_ref())?)
}

pub(super) fn add(node: &Node, name: &str, device_officer: bool, json: bool) -> Result<()> {
    check_name(name)?;
    let hash = hash_password(&password()?)?;
    if !node
        .store()
        .create_account_as(name, &hash, now_ms(), device_officer)?
    {
        bail!("an account {name:?} exists already");
    }
    let role = roles(node)?.get(name).copied().unwrap_or(PersonRole::None);
    if json {
        print_json(&serde_json::json!({
            "name": name,
            "role": role_name(role),
            "device_officer": device_officer,
        }))?;
    } else if device_officer {
        println!(
            "Created account {name}, this device's own officer (role now: {}).",
            role_name(role)
        );
        println!(
            "Note: an officer on this device only, until a hub's grant for {name} reaches it \
             by sync; from then on the hub's grant decides."
        );
    } else {
        println!("Created account {name} (role now: {}).", role_name(role));
        println!(
            "Note: the role is not set here. A hub grants it (sentinel-hub user add {name} --role officer, \
             or an admin on the hub's API), and the grant reaches this node by sync."
        );
    }
    Ok(())
}

pub(super) fn disable(node: &mut Node, name: &str, json: bool) -> Result<()> {
    if !node.store_mut().disable_account(name)? {
        bail!("no account {name:?}");
    }
    if json {
        print_json(&serde_json::json!({"name": name, "disabled": true}))?;
    } else {
        println!("Disabled account {name}; its tokens are revoked.");
    }
    Ok(())
}

pub(super) fn list(node: &Node, json: bool) -> Result<()> {
    let roles = roles(node)?;
    let accounts = node.store().accounts()?;
    let role = |n: &str| role_name(roles.get(n).copied().unwrap_or(PersonRole::None));
    if json {
        let items: Vec<_> = accounts
            .iter()
            .map(|a| serde_json::json!({"name": a.name, "role": role(&a.name), "disabled": a.disabled, "created_ms": a.created_ms, "device_officer": a.device_officer}))
            .collect();
        return print_json(&items);
    }
    if accounts.is_empty() {
        println!("No accounts: create one with `sentinel-node user add NAME`.");
    }
    for a in &accounts {
        println!(
            "{:<24} {:<8}{}{}",
            a.name,
            role(&a.name),
            if a.device_officer {
                "  device officer"
            } else {
                ""
            },
            if a.disabled { "  disabled" } else { "" }
        );
    }
    Ok(())
}

pub(super) fn reset_password(node: &mut Node, name: &str, json: bool) -> Result<()> {
    let hash = hash_password(&password()?)?;
    if !node.store_mut().set_password(name, &hash, None)? {
        bail!("no account {name:?}");
    }
    if json {
        print_json(&serde_json::json!({"name": name, "password_reset": true}))?;
    } else {
        println!("Account {name} has a new password; its tokens are revoked.");
    }
    Ok(())
}

pub(super) fn enable(node: &Node, name: &str, json: bool) -> Result<()> {
    if !node.store().enable_account(name)? {
        bail!("no account {name:?}");
    }
    if json {
        print_json(&serde_json::json!({"name": name, "disabled": false}))?;
    } else {
        println!("Enabled account {name}; it may sign in again.");
    }
    Ok(())
}

pub(super) fn purge_tokens(node: &Node, json: bool) -> Result<()> {
    let n = node.store().purge_tokens(now_ms())?;
    if json {
        print_json(&serde_json::json!({"purged": n}))?;
    } else {
        println!("Deleted {n} expired or revoked tokens.");
    }
    Ok(())
}
