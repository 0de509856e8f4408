//! What every service's OpenAPI description shares: who a route answers, documented once.
//!
//! A service lists, next to its routes, those that need a signed-in caller and those that
//! answer anyone but more for a signed-in one; [`document_callers`] gives each the security
//! requirements of [`Caller`], so the requirement is spelled in one place instead of on every
//! handler. Routes not listed answer anyone and carry no requirement.

use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;

/// Who a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Only a signed-in caller: a bearer token or the `access_token` cookie (else 401).
    SignedIn,
    /// Anyone; a signed-in caller gets their own answer.
    SignedInOrAnonymous,
}

impl Caller {
    /// The security requirements of the operation: the two ways to sign in, alternatives to
    /// each other, and for [`Caller::SignedInOrAnonymous`] first the empty one (no credentials).
    fn requirements(self) -> Vec<SecurityRequirement> {
        let signed_in = [
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("cookie", Vec::<String>::new()),
        ];
        match self {
            Self::SignedIn => signed_in.to_vec(),
            Self::SignedInOrAnonymous => std::iter::once(SecurityRequirement::default())
                .chain(signed_in)
                .collect(),
        }
    }
}

/// Gives each route of `routes` (method and path as the service serves it) the security
/// requirements of its [`Caller`]; a route `doc` does not describe is left out (the OpenAPI
/// snapshot test then fails, as the document changed).
pub fn document_callers(doc: &mut OpenApi, routes: &[(HttpMethod, &str, Caller)]) {
    for (method, path, caller) in routes {
        let Some(item) = doc.paths.paths.get_mut(*path) else {
            continue;
        };
        for (_, operation) in operations(item).filter(|(m, _)| m == method) {
            operation.security = Some(caller.requirements());
        }
    }
}

/// Each operation of `item` with its method.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::{OperationBuilder, PathItemBuilder, PathsBuilder};
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

    use super::*;

    #[test]
    fn listed_routes_get_their_requirements_and_others_none() {
        let item = PathItemBuilder::new()
            .operation(HttpMethod::Get, OperationBuilder::new().build())
            .operation(HttpMethod::Post, OperationBuilder::new().build())
            .build();
        let mut doc = OpenApiBuilder::new()
            .info(InfoBuilder::new().title("t").version("1").build())
            .paths(PathsBuilder::new().path("/things", item))
            .build();
        document_callers(
            &mut doc,
            &[
                (HttpMethod::Post, "/things", Caller::SignedIn),
                (HttpMethod::Get, "/elsewhere", Caller::SignedIn),
            ],
        );
        let things = &doc.paths.paths["/things"];
        let post = serde_json::to_value(things.post.as_ref().unwrap()).unwrap();
        assert_eq!(
            post["security"],
            serde_json::json!([{"bearer": []}, {"cookie": []}])
        );
        assert!(things.get.as_ref().unwrap().security.is_none());
        document_callers(
            &mut doc,
            &[(HttpMethod::Get, "/things", Caller::SignedInOrAnonymous)],
        );
        let get = serde_json::to_value(doc.paths.paths["/things"].get.as_ref().unwrap()).unwrap();
        assert_eq!(
            get["security"],
            serde_json::json!([{}, {"bearer": []}, {"cookie": []}])
        );
    }
}
