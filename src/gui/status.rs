//! The status panel: which device the engine runs on, and each model's state.

use crate::engine::{ModelStatus, Request};
use crate::model_store::CATALOGUE;

use super::CrossmodalApp;

pub fn status_panel(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    ui.heading("crossmodal");
    ui.add_space(4.0);
    let device = app.device.as_ref().map_or_else(|| "starting…".to_owned(), ToString::to_string);
    ui.label(format!("Device: {device}"));
    ui.label(format!("Model store: {}", app.store_root.display()));
    ui.add_space(8.0);

    egui::Grid::new("models").striped(true).num_columns(4).spacing([16.0, 6.0]).show(ui, |ui| {
        ui.strong("Model");
        ui.strong("Role");
        ui.strong("Status");
        ui.strong("");
        ui.end_row();
        for spec in CATALOGUE {
            let status = app.models.get(spec.name).cloned().unwrap_or(ModelStatus::NotInstalled);
            ui.label(spec.name);
            ui.label(spec.role.describe());
            let text = format!("{}: {status}", spec.name);
            let color = match status {
                ModelStatus::Ready { .. } => ui.visuals().widgets.active.text_color(),
                ModelStatus::Failed(_) => ui.visuals().error_fg_color,
                _ => ui.visuals().weak_text_color(),
            };
            ui.label(egui::RichText::new(status.to_string()).color(color)).on_hover_text(text);
            match status {
                ModelStatus::Installed | ModelStatus::Failed(_) => {
                    if ui.button(format!("Load {}", spec.name)).clicked() {
                        app.send(Request::Load(spec.name.to_owned()));
                    }
                }
                ModelStatus::NotInstalled => {
                    ui.label(format!("crossmodal models fetch {}", spec.name));
                }
                ModelStatus::Loading => {
                    ui.spinner();
                }
                ModelStatus::Ready { .. } => {
                    ui.label("");
                }
            }
            ui.end_row();
        }
    });

    if !app.notices.is_empty() {
        ui.add_space(8.0);
        let mut dismiss = None;
        for (i, notice) in app.notices.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.colored_label(ui.visuals().warn_fg_color, notice);
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(i);
                }
            });
        }
        if let Some(i) = dismiss {
            app.notices.remove(i);
        }
    }
}
