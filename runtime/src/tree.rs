//! The device's MO instances and ClientURI resolution (spec 6.1.2).

use dm_core::{
    ClientUri, InstanceTree, ManagementObject, MoSchema, NodeData, NodeSchema, ResolveError,
    StatusCode,
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

    pub fn instance_mut(&mut self, index: usize) -> Option<&mut Instance> {
        self.instances.get_mut(index)
    }

    /// The MOIDs served, each with who serves it (for plugin loading).
    pub fn served_moids(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for i in &self.instances {
            let moid = i.mo.schema().moid;
            if !out.iter().any(|(m, _)| m == moid) {
                out.push((moid.to_owned(), "a compiled-in MO".to_owned()));
            }
        }
        out
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
    /// steps of spec 6.1.2 ([`dm_core::resolve`]). An URI that cannot be
    /// resolved answers 404, the status Appendix C gives for "the specified
    /// ClientURI was not found"; [`Registry::try_resolve`] says why.
    pub fn resolve(&self, uri: &ClientUri) -> Result<Vec<Resolved>, StatusCode> {
        self.try_resolve(uri).map_err(|e| e.status())
    }

    /// As [`Registry::resolve`], with the step of 6.1.2 that failed and why.
    pub fn try_resolve(&self, uri: &ClientUri) -> Result<Vec<Resolved>, ResolveError> {
        let nodes = dm_core::resolve::resolve(self, uri)?;
        Ok(nodes
            .into_iter()
            .map(|n| Resolved {
                instance: n.instance,
                path: n.path,
            })
            .collect())
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

/// The registry as the tree ClientURI resolution walks: instances by
/// index, children and leaf values read through the MO.
impl InstanceTree for Registry {
    type Instance = usize;

    fn instances(&self, moid: &str) -> Vec<(usize, String)> {
        self.instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.mo.schema().moid == moid)
            .map(|(n, i)| (n, i.miid.clone()))
            .collect()
    }

    fn children(&self, instance: &usize, path: &[String]) -> Vec<String> {
        let Some(i) = self.instances.get(*instance) else {
            return Vec::new();
        };
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        match i.mo.get(&refs) {
            Ok(NodeData::Interior(children)) => children.into_iter().map(|(n, _)| n).collect(),
            _ => Vec::new(),
        }
    }

    /// The leaf's bare text form (Appendix F), which `nv` values compare
    /// with; `None` for a value that is not text (bin that is not UTF-8).
    fn leaf_text(&self, instance: &usize, path: &[String]) -> Option<String> {
        let i = self.instances.get(*instance)?;
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        match i.mo.get(&refs) {
            Ok(NodeData::Leaf(v)) => String::from_utf8(v.to_bare().1).ok(),
            _ => None,
        }
    }
}
