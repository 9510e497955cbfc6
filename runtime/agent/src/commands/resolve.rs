//! ClientURI resolution for a principal (spec 6.1.2 over what it may see,
//! 13.2), and the rights it has on a resolved node. The resolver itself,
//! with its fast path, is dm-core's ([`dm_core::resolve::resolve_targets`]).

use dm_core::{ClientUri, InstanceSelector, ResolveError, Rights, StatusCode};

use crate::access::{self, View};
use crate::client::{Device, SessionCtx};
use crate::tree::{ResolvedNodes, Target};

impl Device {
    /// Rights of the session's principal on a resolved node: the DACMO
    /// rules of its instance (access).
    pub(super) fn rights_on(&self, ctx: &SessionCtx, r: &Target) -> Rights {
        access::rights(&ctx.principal, self.registry(), r.instance, &r.path.refs())
    }

    /// Resolves a ClientURI for a principal over the tree as it may see it
    /// ([`View`]): wildcards and x-names only reach instances it may see and
    /// `nv` fields only match leaves it may read. An instance it may not see
    /// that the URI names by MIID (or as the only instance) answers 403.
    pub(crate) fn resolve_for<'u>(
        &self,
        ctx: &SessionCtx,
        uri: &'u ClientUri,
    ) -> Result<ResolvedNodes<'u>, StatusCode> {
        let view = View {
            registry: self.registry(),
            principal: &ctx.principal,
        };
        dm_core::resolve::resolve_targets(&view, uri).map_err(|e| self.refusal(ctx, uri, &e))
    }

    /// The status of a ClientURI that does not resolve for the principal:
    /// 403 when the instance it names by MIID (or as the only instance) is
    /// one the principal may not see, else 404. Only the instance's own
    /// visibility decides: nothing about the nodes inside it may show.
    fn refusal(&self, ctx: &SessionCtx, uri: &ClientUri, e: &ResolveError) -> StatusCode {
        let registry = self.registry();
        let hidden = |index: usize| !access::can_see(&ctx.principal, registry, index);
        let named_hidden = match uri.instance() {
            InstanceSelector::Miid(m) => registry.find(uri.moid(), m).is_some_and(hidden),
            InstanceSelector::Only => {
                match dm_core::InstanceTree::instances(registry, uri.moid()).as_slice() {
                    [(index, _)] => hidden(*index),
                    _ => false,
                }
            }
            _ => false,
        };
        if named_hidden {
            StatusCode::FORBIDDEN
        } else {
            e.status()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_device::with_accounts;
    use super::*;
    use crate::access::Principal;
    use crate::tree::{NodePath, Owner};

    /// The general path alone, with the 403 the device adds.
    fn general(
        device: &Device,
        ctx: &SessionCtx,
        uri: &ClientUri,
    ) -> Result<Vec<(usize, Vec<String>)>, StatusCode> {
        let view = View {
            registry: device.registry(),
            principal: &ctx.principal,
        };
        match dm_core::resolve::resolve(&view, uri) {
            Ok(nodes) => Ok(nodes.into_iter().map(|n| (n.instance, n.path)).collect()),
            Err(e) => Err(device.refusal(ctx, uri, &e)),
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let device = with_accounts(&["s1", "s2"]);
        let devinfo = "urn:oma:mo:oma-dm-devinfo:1.2";
        let uris = [
            format!("{devinfo}//"),
            format!("{devinfo}//DevID"),
            format!("{devinfo}//Ext"),
            format!("{devinfo}//NoSuchNode"),
            format!("{devinfo}//DevID/Deeper"),
            format!("{devinfo}/devinfo/Mod"),
            format!("{devinfo}/nosuchmiid/Mod"),
            "urn:oma:mo:oma-sessioninfomo:1.0//CBT".into(),
            "urn:oma:mo:no-such-mo:1.0//".into(),
            format!("{devinfo}/*/Mod"),
            format!("{devinfo}/*/"),
            format!("{devinfo}/*/NoSuchNode"),
            // Two DMAcc accounts: `*` finds both.
            "urn:oma:mo:oma-dm-dmacc:1.2/*/".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/*/NoSuchNode".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/s2/SrvID".into(),
            "urn:oma:mo:no-such-mo:1.0/*/".into(),
            // x-names: one instance matches, none, or both.
            format!("{devinfo}/(x)/FwV?nv=(x)/DmV:2.0"),
            format!("{devinfo}/(x)/FwV?nv=(x)/DmV:9.9"),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/SrvURI?nv=(x)/SrvID:s2".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/?nv=(x)/SrvID:s1&nv=(x)/Name:s1".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/?nv=(x)/SrvURI:https%3A%2F%2Fdm.example%2Fdm".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/NoSuchNode?nv=(x)/SrvID:s1".into(),
        ];
        let contexts = [
            SessionCtx::local(Owner::Device),
            SessionCtx {
                principal: Principal::App("some-app".into()),
                server_accept: None,
                owner: Owner::Device,
            },
            // A server sees its own account, not the other's.
            SessionCtx::for_server_id(&device, Some("s1")).unwrap(),
        ];
        let mut fast = 0;
        for ctx in &contexts {
            for text in &uris {
                let uri: ClientUri = text.parse().unwrap();
                let general = general(&device, ctx, &uri);
                let one = device.resolve_for(ctx, &uri);
                let owned = one.clone().map(|nodes| {
                    nodes
                        .into_iter()
                        .map(|n| (n.instance, n.path.into_owned()))
                        .collect::<Vec<_>>()
                });
                assert_eq!(owned, general, "{text}");
                // The fast path lends the URI's names, copying none; the
                // general path's names are its own.
                if one.is_ok_and(|nodes| nodes.iter().all(|n| matches!(n.path, NodePath::Uri(_)))) {
                    fast += 1;
                }
            }
        }
        // 30 of the 66 cases when written, x-names and `*` included.
        assert!(fast >= 28, "the fast path took only {fast} URIs");
        // `*` over both accounts, in the general path's order, by the fast one.
        let all: ClientUri = "urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID".parse().unwrap();
        for (ctx, count) in [(&contexts[0], 2), (&contexts[2], 1)] {
            let nodes = device.resolve_for(ctx, &all).unwrap();
            assert_eq!(nodes.len(), count);
            assert!(nodes.iter().all(|n| matches!(n.path, NodePath::Uri(_))));
        }
    }
}
