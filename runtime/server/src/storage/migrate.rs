//! Versioned schema migrations, shared by the SQLite and PostgreSQL
//! backends: each backend keeps a numbered list of SQL steps, and at open
//! applies the steps its database has not seen, in order, in one
//! transaction, recording each in `schema_migrations`. A server upgrade
//! thus never needs a hand-written SQL step, and a database written by a
//! newer server is refused instead of misread.

use super::StorageError;

/// The table that records which steps a database has had.
pub(crate) const MIGRATIONS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied BIGINT NOT NULL
);
";

/// One numbered step of a backend's schema. Steps are never edited once
/// released: a change is a new step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// 1, 2, 3, ... without gaps.
    pub version: u32,
    /// What the step does, stored beside its number.
    pub name: &'static str,
    pub sql: &'static str,
}

/// The newest version `migrations` leads to.
pub(crate) fn latest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |m| m.version)
}

/// The steps a database at `current` still needs, in order; a database
/// newer than this server is an error, not something to write to.
pub(crate) fn pending(
    current: u32,
    migrations: &[Migration],
) -> Result<&[Migration], StorageError> {
    let known = latest(migrations);
    if current > known {
        return Err(StorageError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let first = migrations
        .iter()
        .position(|m| m.version > current)
        .unwrap_or(migrations.len());
    Ok(&migrations[first..])
}

/// POSIX seconds, for `schema_migrations.applied`.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Steps are numbered 1..=n in order: a gap or a swap would skip or
/// reorder a step on some databases.
#[cfg(test)]
pub(crate) fn assert_well_numbered(migrations: &[Migration]) {
    for (i, m) in migrations.iter().enumerate() {
        assert_eq!(
            usize::try_from(m.version).ok(),
            Some(i + 1),
            "migration {} is at position {}",
            m.name,
            i + 1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration {
            version: 1,
            name: "one",
            sql: "",
        },
        Migration {
            version: 2,
            name: "two",
            sql: "",
        },
    ];

    #[test]
    fn pending_steps_follow_the_current_version_and_newer_is_refused() {
        let names =
            |v| -> Vec<&str> { pending(v, STEPS).unwrap().iter().map(|m| m.name).collect() };
        assert_eq!(names(0), ["one", "two"]);
        assert_eq!(names(1), ["two"]);
        assert!(names(2).is_empty());
        let err = pending(3, STEPS).unwrap_err();
        assert!(
            matches!(err, StorageError::SchemaTooNew { found: 3, known: 2 }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("version 3") && text.contains("2"), "{text}");
    }
}
