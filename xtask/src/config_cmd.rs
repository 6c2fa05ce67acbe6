//! `cargo xtask config`: prints the variants of images.toml as resolved (defaults applied).

use anyhow::Result;

use crate::config::human_size;
use crate::ctx::Ctx;
use crate::report::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    /// Only these variants (default: all).
    variants: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variants = if self.variants.is_empty() {
            config.variants.iter().collect()
        } else {
            config.select(&self.variants, false)?
        };
        let budget = |b: Option<u64>| b.map_or("-".to_string(), human_size);
        let mut table = Table::new(&[
            "variant",
            "dockerfile",
            "target",
            "image",
            "platforms",
            "compressed budget",
            "unpacked budget",
            "build args",
            "smoke checks",
        ]);
        for v in &variants {
            let dockerfile = v
                .dockerfile
                .strip_prefix(&config.dir)
                .unwrap_or(&v.dockerfile);
            table.row(vec![
                v.name.clone(),
                crate::util::shown(dockerfile),
                v.target.clone().unwrap_or_else(|| "-".into()),
                v.image_ref(),
                if v.platforms.is_empty() {
                    "engine default".into()
                } else {
                    v.platforms.join(",")
                },
                budget(v.budget.compressed),
                budget(v.budget.unpacked),
                v.build_args
                    .iter()
                    .map(|(k, val)| format!("{k}={val}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                (v.smoke.exec.len() + v.smoke.http.len()).to_string(),
            ]);
        }
        let json = serde_json::json!({
            "config": crate::util::shown(&config.path),
            "project": config.project,
            "base": config.base,
            "build": config.build,
            "variants": variants,
        });
        report::emit(self.format, &table, report::Kind::Config, &json)
    }
}
