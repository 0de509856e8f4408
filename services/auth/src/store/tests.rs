//! The contract every [`UserRepository`] adapter must meet, run once per adapter.

use std::sync::Arc;

use holdfast_common::auth::Role;
use holdfast_common::testing::TestStore;

use super::*;
use crate::domain::user::{Email, User, new_user_id};

fn user(email: &str, created_at: i64) -> User {
    User {
        id: new_user_id(),
        email: Email::parse(email).unwrap(),
        name: Some("Ada".into()),
        role: Role::User,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at,
    }
}

async fn create_then_find_by_email_and_id(repo: Arc<dyn UserRepository>) {
    let ada = user("ada@example.com", 1);
    assert_eq!(repo.create(&ada).await.unwrap(), Created::Created);
    let by_email = repo
        .by_email(&Email::parse("ADA@example.com ").unwrap())
        .await
        .unwrap();
    assert_eq!(by_email.as_ref(), Some(&ada));
    assert_eq!(repo.by_id(&ada.id).await.unwrap().as_ref(), Some(&ada));
    assert_eq!(repo.by_id(&new_user_id()).await.unwrap(), None);
    assert_eq!(repo.by_id("not-an-id").await.unwrap(), None);
    assert_eq!(
        repo.by_email(&Email::parse("bob@example.com").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn an_email_is_taken_once_whatever_its_case(repo: Arc<dyn UserRepository>) {
    let first = repo.create(&user("dup@example.com", 1)).await.unwrap();
    assert_eq!(first, Created::Created);
    let again = repo.create(&user("  DUP@Example.com", 2)).await.unwrap();
    assert_eq!(again, Created::EmailTaken);
    assert_eq!(repo.list().await.unwrap().len(), 1);
}

async fn list_is_oldest_first(repo: Arc<dyn UserRepository>) {
    let (late, early) = (user("late@example.com", 20), user("early@example.com", 10));
    assert_eq!(repo.create(&late).await.unwrap(), Created::Created);
    assert_eq!(repo.create(&early).await.unwrap(), Created::Created);
    let ids: Vec<String> = repo
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, vec![early.id, late.id]);
}

async fn set_role_changes_only_that_user(repo: Arc<dyn UserRepository>) {
    let (a, b) = (user("a@example.com", 1), user("b@example.com", 2));
    assert_eq!(repo.create(&a).await.unwrap(), Created::Created);
    assert_eq!(repo.create(&b).await.unwrap(), Created::Created);
    let updated = repo
        .set_role(&a.id, Role::Organizer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.role, Role::Organizer);
    assert_eq!(
        repo.by_id(&a.id).await.unwrap().unwrap().role,
        Role::Organizer
    );
    assert_eq!(repo.by_id(&b.id).await.unwrap().unwrap().role, Role::User);
    assert_eq!(
        repo.set_role(&new_user_id(), Role::Admin).await.unwrap(),
        None
    );
}

async fn sqlite() -> Option<(Arc<dyn UserRepository>, TestStore)> {
    let test = TestStore::sqlite(&SCHEMA).await;
    Some((users(&test.store), test))
}

async fn mongodb() -> Option<(Arc<dyn UserRepository>, TestStore)> {
    let test = TestStore::mongodb(&SCHEMA).await?;
    Some((users(&test.store), test))
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    create_then_find_by_email_and_id,
    an_email_is_taken_once_whatever_its_case,
    list_is_oldest_first,
    set_role_changes_only_that_user
]);
