//! Accounts that exist from start-up: the `ADMIN_EMAIL` admin in any profile, and the demo
//! accounts of [`holdfast_common::demo`] in development (whatever the store; never in production).

use holdfast_common::auth::Role;
use holdfast_common::demo::{DEMO_ACCOUNTS, DEMO_PASSWORD};

use crate::AppState;
use crate::domain::user::{Email, User, new_user_id, now_millis};
use crate::error::AuthError;

/// Creates the configured admin and, where asked, the demo accounts.
pub async fn bootstrap(state: &AppState) -> anyhow::Result<()> {
    if let Some(admin) = &state.settings.admin {
        let email = Email::parse(&admin.email)
            .map_err(|reason| anyhow::anyhow!("ADMIN_EMAIL: {reason}"))?;
        ensure_admin(state, &email, &admin.password).await?;
        tracing::info!(email = email.as_str(), "admin account ready");
    }
    if state.seeds_demo_data {
        for account in DEMO_ACCOUNTS {
            let email = Email::parse(account.email).map_err(|r| anyhow::anyhow!("{r}"))?;
            ensure_account(
                state,
                Some(account.id),
                &email,
                DEMO_PASSWORD,
                Some(account.name),
                account.role,
            )
            .await?;
        }
        println!("Demo accounts (password \"{DEMO_PASSWORD}\"):");
        for account in DEMO_ACCOUNTS {
            println!("  {:<10} {}", account.role.as_str(), account.email);
        }
    }
    Ok(())
}

/// Creates the operator's admin, or checks that the account with that email is it: an admin
/// whose password is `ADMIN_PASSWORD`. Anyone may sign up with any address, so an existing
/// account is never promoted (whoever signed up first with the operator's address would become
/// admin) nor reset (that would take someone's account and end their sessions on a
/// configuration mistake): the process refuses to start and says why, and the operator
/// chooses another address or deals with that account.
async fn ensure_admin(state: &AppState, email: &Email, password: &str) -> anyhow::Result<()> {
    if state.users.by_email(email).await?.is_none() {
        let admin = User {
            id: new_user_id(),
            email: email.clone(),
            name: None,
            role: Role::Admin,
            password_hash: state.passwords.hash(password).await?,
            created_at: now_millis(),
        };
        // Taken: another replica created it at the same moment, or someone signed up with
        // the address just now; either way it is checked below like any existing account.
        let _created_or_taken = state.users.create(&admin).await?;
    }
    let existing = state
        .users
        .by_email(email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("ADMIN_EMAIL: the admin account was not stored"))?;
    let operators = existing.role == Role::Admin
        && state
            .passwords
            .verify(password, Some(&existing.password_hash))
            .await?;
    if !operators {
        anyhow::bail!(
            "ADMIN_EMAIL {}: an account with this address exists and is not an admin whose \
             password is ADMIN_PASSWORD; refusing to make it an admin, since anyone may sign up \
             with any address. Choose another ADMIN_EMAIL, or remove or fix that account first",
            email.as_str()
        );
    }
    Ok(())
}

/// Creates a demo account, or makes sure the existing one has `role` (its password is kept);
/// development only.
async fn ensure_account(
    state: &AppState,
    id: Option<&str>,
    email: &Email,
    password: &str,
    name: Option<&str>,
    role: Role,
) -> Result<(), AuthError> {
    if let Some(existing) = state.users.by_email(email).await? {
        if existing.role != role {
            state.users.set_role(&existing.id, role).await?;
        }
        return Ok(());
    }
    let user = User {
        id: id.map_or_else(new_user_id, str::to_string),
        email: email.clone(),
        name: name.map(str::to_string),
        role,
        password_hash: state.passwords.hash(password).await?,
        created_at: now_millis(),
    };
    // Taken means another replica created it at the same moment: that is fine.
    let _created_or_taken = state.users.create(&user).await?;
    Ok(())
}
