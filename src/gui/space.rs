//! Space: a 2-D projection (PCA) of what is in the shared space — recent transcripts, command
//! phrases, search queries and indexed images — as a scatter plot with hover labels.

use std::collections::BTreeMap;

use egui_plot::{HoverPosition, Legend, Plot, Points};

use crate::engine::{Request, SpaceItem, SpacePoint};

use super::CrossmodalApp;

/// Items of each text kind sent, at most (the most recent).
const PER_KIND: usize = 60;

#[derive(Default)]
pub struct SpacePanel {
    points: Vec<SpacePoint>,
    waiting: bool,
    asked_once: bool,
}

impl SpacePanel {
    pub fn idle(&self) -> bool {
        !self.waiting
    }

    pub fn projected(&mut self, result: Result<Vec<SpacePoint>, String>) -> Option<String> {
        self.waiting = false;
        match result {
            Ok(points) => {
                self.points = points;
                None
            }
            Err(e) => Some(format!("space: {e}")),
        }
    }

    /// How many points of each kind are drawn.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for p in &self.points {
            *counts.entry(p.kind.clone()).or_default() += 1;
        }
        counts
    }
}

fn refresh(app: &mut CrossmodalApp) {
    let mut items = Vec::new();
    let mut add = |kind: &str, texts: Vec<String>| {
        let skip = texts.len().saturating_sub(PER_KIND);
        items.extend(texts.into_iter().skip(skip).map(|text| SpaceItem { kind: kind.to_owned(), text }));
    };
    add("transcript", app.transcribe.recent_texts());
    add("command", app.commands.phrases());
    add("query", app.images.queries());
    app.space.waiting = true;
    app.space.asked_once = true;
    let gallery = Some(app.images.gallery().to_path_buf());
    app.send(Request::Project { items, gallery });
}

fn color(kind: &str) -> egui::Color32 {
    match kind {
        "transcript" => egui::Color32::from_rgb(0x4c, 0x9b, 0xe8),
        "command" => egui::Color32::from_rgb(0xe8, 0x8a, 0x3c),
        "query" => egui::Color32::from_rgb(0x5c, 0xc0, 0x6a),
        _ => egui::Color32::from_rgb(0xb0, 0x6c, 0xd8),
    }
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    if !app.space.asked_once {
        refresh(app);
    }
    ui.horizontal(|ui| {
        if ui.button("Refresh").on_hover_text("Project what is in the space now").clicked() {
            refresh(app);
        }
        if app.space.waiting {
            ui.spinner();
        }
        let counts = app.space.counts();
        let plural = |k: &str| match k {
            "query" => "queries".to_owned(),
            k => format!("{k}s"),
        };
        let summary: Vec<String> = counts
            .iter()
            .map(|(k, n)| if *n == 1 { format!("1 {k}") } else { format!("{n} {}", plural(k)) })
            .collect();
        ui.label(if summary.is_empty() { "nothing to show yet".to_owned() } else { summary.join(", ") });
    });
    ui.weak("Closer points mean more alike: the first two principal components of every vector.");
    let mut by_kind: BTreeMap<String, (Vec<[f64; 2]>, Vec<String>)> = BTreeMap::new();
    for p in &app.space.points {
        let entry = by_kind.entry(p.kind.clone()).or_default();
        entry.0.push([f64::from(p.x), f64::from(p.y)]);
        entry.1.push(p.label.clone());
    }
    let labels: BTreeMap<String, Vec<String>> =
        by_kind.iter().map(|(k, (_, l))| (k.clone(), l.clone())).collect();
    Plot::new("space")
        .legend(Legend::default())
        .x_axis_label("first component")
        .y_axis_label("second component")
        .data_aspect(1.0)
        .label_formatter(move |pos| match pos {
            HoverPosition::NearDataPoint { plot_name, index, .. } => {
                labels.get(*plot_name).and_then(|l| l.get(*index)).map(|l| format!("{plot_name}: {l}"))
            }
            HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot| {
            for (kind, (points, _)) in by_kind {
                plot.points(Points::new(kind.clone(), points).radius(4.0).color(color(&kind)));
            }
        });
}
