//! The MongoDB adapter of [`UserRepository`]: collection `users`, unique index on `email`.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::auth::Role;
use holdfast_common::docstore::{MongoDb, is_duplicate_key};
use mongodb::Collection;
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};

use super::{Created, RepoError, UserRepository, parse_email, parse_role};
use crate::domain::user::{Email, User};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    email: String,
    name: Option<String>,
    role: String,
    password_hash: String,
    created_at: i64,
}

impl UserDocument {
    fn from_user(user: &User) -> Result<Self, RepoError> {
        Ok(Self {
            id: ObjectId::parse_str(&user.id)
                .map_err(|e| RepoError::Corrupt(format!("user id {}: {e}", user.id)))?,
            email: user.email.as_str().to_string(),
            name: user.name.clone(),
            role: user.role.as_str().to_string(),
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
        })
    }

    fn into_user(self) -> Result<User, RepoError> {
        Ok(User {
            id: self.id.to_hex(),
            email: parse_email(&self.email)?,
            name: self.name,
            role: parse_role(&self.role)?,
            password_hash: self.password_hash,
            created_at: self.created_at,
        })
    }
}

pub struct MongoUsers {
    users: Collection<UserDocument>,
}

impl MongoUsers {
    pub fn new(db: &MongoDb) -> Self {
        Self {
            users: db.database().collection("users"),
        }
    }
}

#[async_trait]
impl UserRepository for MongoUsers {
    async fn create(&self, user: &User) -> Result<Created, RepoError> {
        match self.users.insert_one(UserDocument::from_user(user)?).await {
            Ok(_) => Ok(Created::Created),
            Err(e) if is_duplicate_key(&e) => Ok(Created::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        self.users
            .find_one(doc! { "email": email.as_str() })
            .await?
            .map(UserDocument::into_user)
            .transpose()
    }

    async fn by_id(&self, id: &str) -> Result<Option<User>, RepoError> {
        let Ok(oid) = ObjectId::parse_str(id) else {
            return Ok(None);
        };
        self.users
            .find_one(doc! { "_id": oid })
            .await?
            .map(UserDocument::into_user)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<User>, RepoError> {
        let documents: Vec<UserDocument> = self
            .users
            .find(doc! {})
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        documents.into_iter().map(UserDocument::into_user).collect()
    }

    async fn set_role(&self, id: &str, role: Role) -> Result<Option<User>, RepoError> {
        let Ok(oid) = ObjectId::parse_str(id) else {
            return Ok(None);
        };
        self.users
            .find_one_and_update(
                doc! { "_id": oid },
                doc! { "$set": { "role": role.as_str() } },
            )
            .return_document(ReturnDocument::After)
            .await?
            .map(UserDocument::into_user)
            .transpose()
    }
}
