//! The device's MO instances and ClientURI resolution (spec 6.1.2).

use dm_core::{
    ClientUri, InstanceSelector, ManagementObject, MoSchema, NodeData, NodeSchema, NodeSelector,
    NodeValue, StatusCode,
};

/// One MO instance held by the device.
pub struct Instance {
    pub miid: String,
    pub mo: Box<dyn ManagementObject>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("moid", &self.mo.schema().moid)
            .field("miid", &self.miid)
            .finish()
    }
}

/// A node that a ClientURI resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Index of the instance in the registry.
    pub instance: usize,
    /// Path from the instance root.
    pub path: Vec<String>,
}

/// Every MO instance on the device, in registration order.
#[derive(Debug, Default)]
pub struct Registry {
    instances: Vec<Instance>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds an instance under `miid`, unique per MOID.
    pub fn insert(&mut self, miid: impl Into<String>, mo: Box<dyn ManagementObject>) {
        let miid = miid.into();
        let moid = mo.schema().moid;
        self.instances
            .retain(|i| !(i.mo.schema().moid == moid && i.miid == miid));
        self.instances.push(Instance { miid, mo });
    }

    pub fn instance(&self, index: usize) -> Option<&Instance> {
        self.instances.get(index)
    }

    /// Every MO the device supports with the MIIDs of its instances, in
    /// registration order (the MOS array of spec 5.2.2).
    pub fn mos(&self) -> Vec<(&'static MoSchema, Vec<&str>)> {
        let mut out: Vec<(&'static MoSchema, Vec<&str>)> = Vec::new();
        for i in &self.instances {
            let schema = i.mo.schema();
            match out.iter_mut().find(|(s, _)| s.moid == schema.moid) {
                Some((_, miids)) => miids.push(&i.miid),
                None => out.push((schema, vec![&i.miid])),
            }
        }
        out
    }

    /// Resolves a ClientURI to the nodes it addresses, following the two
    /// steps of spec 6.1.2. An URI that cannot be resolved (no instance,
    /// several where one is required, no node) answers 404, the status
    /// Appendix C gives for "the specified ClientURI was not found".
    pub fn resolve(&self, uri: &ClientUri) -> Result<Vec<Resolved>, StatusCode> {
        let not_found = Err(StatusCode::NOT_FOUND);
        let candidates: Vec<usize> = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.mo.schema().moid == uri.moid())
            .map(|(n, _)| n)
            .collect();
        // Step 1: the MO instance(s).
        let instances: Vec<usize> = match uri.instance() {
            InstanceSelector::Miid(m) => candidates
                .into_iter()
                .filter(|n| self.instances[*n].miid == *m)
                .collect(),
            InstanceSelector::Only | InstanceSelector::All => candidates,
            InstanceSelector::XName(x) => candidates
                .into_iter()
                .filter(|n| self.matches_nv(*n, &[], *x, uri))
                .collect(),
        };
        let several_allowed = *uri.instance() == InstanceSelector::All;
        if instances.is_empty() || (!several_allowed && instances.len() > 1) {
            return not_found;
        }
        // Step 2: the node(s) within each instance.
        let mut found = Vec::new();
        for n in instances {
            let mut paths: Vec<Vec<String>> = vec![Vec::new()];
            for seg in uri.path() {
                let mut next = Vec::new();
                for p in &paths {
                    let names = self.child_names(n, p);
                    match seg {
                        NodeSelector::Name(name) => {
                            if names.iter().any(|c| c == name) {
                                next.push(extend(p, name));
                            }
                        }
                        NodeSelector::All => next.extend(names.iter().map(|c| extend(p, c))),
                        NodeSelector::XName(x) => {
                            let hits: Vec<Vec<String>> = names
                                .iter()
                                .map(|c| extend(p, c))
                                .filter(|cp| self.matches_nv(n, cp, *x, uri))
                                .collect();
                            if hits.len() > 1 {
                                return not_found;
                            }
                            next.extend(hits);
                        }
                    }
                }
                paths = next;
            }
            found.extend(paths.into_iter().map(|path| Resolved { instance: n, path }));
        }
        if found.is_empty() {
            return not_found;
        }
        Ok(found)
    }

    fn child_names(&self, instance: usize, path: &[String]) -> Vec<String> {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.instances[instance].mo.get(&refs) {
            Ok(NodeData::Interior(children)) => children.into_iter().map(|(n, _)| n).collect(),
            _ => Vec::new(),
        }
    }

    /// True when the node at `base` satisfies every `nv` field of x-name `x`.
    fn matches_nv(&self, instance: usize, base: &[String], x: char, uri: &ClientUri) -> bool {
        uri.query()
            .node_values
            .iter()
            .filter(|nv| nv.x_name == x)
            .all(|nv| self.node_has_value(instance, base, nv))
    }

    fn node_has_value(&self, instance: usize, base: &[String], nv: &NodeValue) -> bool {
        let path: Vec<&str> = base
            .iter()
            .map(String::as_str)
            .chain(nv.path.iter().map(String::as_str))
            .collect();
        match self.instances[instance].mo.get(&path) {
            Ok(NodeData::Leaf(v)) => {
                let (_, bytes) = v.to_bare();
                bytes == nv.value.as_bytes()
            }
            _ => false,
        }
    }

    /// The schema of a resolved node.
    pub fn schema_of(&self, r: &Resolved) -> Option<&'static NodeSchema> {
        let root = &self.instances.get(r.instance)?.mo.schema().root;
        let path: Vec<&str> = r.path.iter().map(String::as_str).collect();
        let mut node = root;
        for seg in path {
            node = node.child(seg)?;
        }
        Some(node)
    }
}

fn extend(path: &[String], name: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(name.to_owned());
    p
}
