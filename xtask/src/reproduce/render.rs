//! Render (pure): the digests of both images side by side, per variant and platform.

use super::judge::Row;
use crate::report::Table;

pub(crate) fn table(rows: &[Row], a: &str, b: &str) -> Table {
    let mut table = Table::new(&[
        "variant",
        "platform",
        &format!("config ({a})"),
        &format!("config ({b})"),
        &format!("manifest ({a})"),
        &format!("manifest ({b})"),
        "result",
    ]);
    let cell = |d: Option<&String>| d.cloned().unwrap_or_else(|| "-".into());
    for r in rows {
        table.row(vec![
            r.variant.clone(),
            r.platform.clone(),
            cell(r.a.as_ref().map(|d| &d.config)),
            cell(r.b.as_ref().map(|d| &d.config)),
            cell(r.a.as_ref().map(|d| &d.manifest)),
            cell(r.b.as_ref().map(|d| &d.manifest)),
            match r.difference(a, b) {
                None => "same".into(),
                Some(why) => format!("DIFFERS: {why}"),
            },
        ]);
    }
    table
}
