//! Choosing a file or a folder. The desktop's own dialog where it has one (rfd: on Linux the XDG
//! desktop portal's file chooser, else zenity); where it has neither, rfd shows nothing and
//! returns as if the user had cancelled, so the window asks instead: a path field with
//! completion, and a notice that says why. A choice can always be finished.

use std::path::{Path, PathBuf};

use crate::media::{AUDIO_EXTENSIONS, IMAGE_EXTENSIONS};

/// How a choice is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileDialogs {
    /// The desktop's dialog when it has one, else the window's path field.
    #[default]
    Auto,
    /// Always the window's path field (`CROSSMODAL_FILE_DIALOG=window`).
    InWindow,
}

impl FileDialogs {
    /// `CROSSMODAL_FILE_DIALOG=window` asks for the window's path field even where the desktop
    /// has a dialog.
    pub fn from_env() -> Self {
        match std::env::var("CROSSMODAL_FILE_DIALOG").as_deref() {
            Ok("window") => Self::InWindow,
            _ => Self::Auto,
        }
    }
}

/// What a choice is for: it decides what may be chosen and what happens next.
#[derive(Debug, Clone)]
pub(crate) enum Want {
    /// Audio files to transcribe (a folder: the audio files in it).
    Audio,
    /// Folders or files to add to the library.
    Library,
    /// One image, to find similar ones.
    SimilarImage,
    /// Where to save a transcript: in `format`, or the format the chosen name ends in
    /// (talk.srt).
    Save { file_name: String, transcript: crate::speech::Transcript, format: crate::speech::export::Format },
}

impl Want {
    pub(crate) fn title(&self) -> &'static str {
        match self {
            Want::Audio => "Open audio files",
            Want::Library => "Add to the library",
            Want::SimilarImage => "Find images similar to…",
            Want::Save { .. } => "Save the transcript",
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Want::Audio => "Open",
            Want::Library => "Add",
            Want::SimilarImage => "Find similar",
            Want::Save { .. } => "Save",
        }
    }

    /// What `path` gives for this choice, or why it cannot be used.
    pub(crate) fn check(&self, path: &Path) -> Result<Vec<PathBuf>, String> {
        let exists = path.exists();
        match self {
            Want::Audio if path.is_dir() => {
                let files = audio_in(path);
                if files.is_empty() {
                    Err(format!("no audio files in this folder ({})", AUDIO_EXTENSIONS.join(", ")))
                } else {
                    Ok(files)
                }
            }
            Want::Audio if exists && !crate::media::is_audio(path) => {
                Err(format!("not an audio file ({})", AUDIO_EXTENSIONS.join(", ")))
            }
            Want::SimilarImage if path.is_dir() => Err("a folder: choose an image in it".into()),
            Want::SimilarImage if exists && !crate::media::is_image(path) => {
                Err(format!("not an image ({})", IMAGE_EXTENSIONS.join(", ")))
            }
            Want::Library if exists && crate::media::kind(path) == crate::media::Media::Other => {
                Err("not a folder, an image or an audio file".into())
            }
            Want::Save { .. } if path.is_dir() => Err("a folder: add a file name".into()),
            Want::Save { .. } => match path.parent() {
                Some(dir) if dir.as_os_str().is_empty() || dir.is_dir() => Ok(vec![path.to_path_buf()]),
                _ => Err("no such folder".into()),
            },
            _ if !exists => Err("no such file or folder".into()),
            _ => Ok(vec![path.to_path_buf()]),
        }
    }

    /// Whether a file of this kind is offered among the completions (folders always are).
    fn offers(&self, path: &Path) -> bool {
        match self {
            Want::Audio => crate::media::is_audio(path),
            Want::SimilarImage => crate::media::is_image(path),
            Want::Library => crate::media::is_audio(path) || crate::media::is_image(path),
            Want::Save { .. } => true,
        }
    }
}

/// The audio files directly in a folder, by name.
fn audio_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && crate::media::is_audio(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Why the desktop cannot show a file dialog, or nothing when it can. On Linux rfd asks the XDG
/// desktop portal's file chooser over the session bus, then runs `zenity`; with neither it
/// shows nothing at all.
pub(crate) fn why_no_native_dialog() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let data_dirs = std::env::var("XDG_DATA_DIRS").unwrap_or_default();
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    why_no_dialog(&path, &data_dirs, bus)
}

/// `why_no_native_dialog` with the environment given: the `PATH`, `XDG_DATA_DIRS`, and whether a
/// session bus is there.
fn why_no_dialog(path: &std::ffi::OsStr, data_dirs: &str, session_bus: bool) -> Option<String> {
    if std::env::split_paths(path).any(|dir| dir.join("zenity").is_file()) {
        return None;
    }
    let dirs: Vec<PathBuf> = if data_dirs.is_empty() {
        vec!["/usr/local/share".into(), "/usr/share".into()]
    } else {
        std::env::split_paths(data_dirs).collect()
    };
    // A portal implementation that offers the file chooser (xdg-desktop-portal-gtk, -kde, -gnome…).
    let chooser = dirs.iter().any(|d| {
        std::fs::read_dir(d.join("xdg-desktop-portal/portals")).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                std::fs::read_to_string(e.path())
                    .is_ok_and(|text| text.contains("org.freedesktop.impl.portal.FileChooser"))
            })
        })
    });
    match (chooser, session_bus) {
        (true, true) => None,
        (true, false) => Some("no file dialog: the desktop portal needs a session bus, and zenity is not installed".into()),
        (false, _) => Some(
            "no file dialog on this desktop (no desktop portal with a file chooser, no zenity): type the path in the window; installing xdg-desktop-portal-gtk or zenity gives the system's dialog"
                .into(),
        ),
    }
}

/// The desktop's dialog for `want`; `None` when the user cancelled.
pub(crate) fn native_pick(want: &Want) -> Option<Vec<PathBuf>> {
    let dialog = rfd::FileDialog::new().set_title(want.title());
    match want {
        Want::Audio => dialog.add_filter("audio", &AUDIO_EXTENSIONS).pick_files(),
        Want::Library => dialog.pick_folders(),
        Want::SimilarImage => dialog.add_filter("image", &IMAGE_EXTENSIONS).pick_file().map(|f| vec![f]),
        Want::Save { file_name, .. } => dialog.set_file_name(file_name).save_file().map(|f| vec![f]),
    }
}

/// The window's own way to choose: a path typed, with completion.
pub(crate) struct PathField {
    pub(crate) want: Want,
    text: String,
    focus: bool,
    /// The completions of `text` as last listed: the folder is read again only when the text
    /// changes, not every frame the field is drawn.
    listed: Option<(String, Vec<String>)>,
}

/// What the path field came to this frame.
pub(crate) enum Answer {
    Chosen(Want, Vec<PathBuf>),
    Cancelled,
}

impl PathField {
    /// Starts in the home folder (with the file name, when saving).
    pub(crate) fn new(want: Want) -> Self {
        let home = directories::UserDirs::new().map(|u| u.home_dir().to_path_buf());
        let mut text = home.map_or_else(String::new, |h| format!("{}/", h.display()));
        if let Want::Save { file_name, .. } = &want {
            text.push_str(file_name);
        }
        Self { want, text, focus: true, listed: None }
    }

    /// The typed path, `~` expanded.
    fn path(&self) -> PathBuf {
        expand(&self.text)
    }

    /// The folder's entries that start with what is typed after the last `/`: folders first (with
    /// a `/`), then files of the wanted kind, by name; at most `limit`.
    /// `completions` of what is typed now, read again only when the text changed.
    fn listing(&mut self) -> Vec<String> {
        match &self.listed {
            Some((text, list)) if *text == self.text => list.clone(),
            _ => {
                let list = self.completions(200);
                self.listed = Some((self.text.clone(), list.clone()));
                list
            }
        }
    }

    fn completions(&self, limit: usize) -> Vec<String> {
        let (dir, stem) = match self.text.rfind('/') {
            Some(i) => (&self.text[..=i], &self.text[i + 1..]),
            None => ("", self.text.as_str()),
        };
        let listed = if dir.is_empty() { PathBuf::from(".") } else { expand(dir) };
        let Ok(entries) = std::fs::read_dir(&listed) else { return Vec::new() };
        let hidden = !stem.starts_with('.');
        let mut found: Vec<(bool, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let is_dir = e.path().is_dir();
                let wanted = is_dir || self.want.offers(&e.path());
                (wanted && name.starts_with(stem) && !(hidden && name.starts_with('.')))
                    .then(|| (!is_dir, if is_dir { format!("{dir}{name}/") } else { format!("{dir}{name}") }))
            })
            .collect();
        found.sort();
        found.into_iter().take(limit).map(|(_, s)| s).collect()
    }

    /// Draws the field in its own window; `Some` once the user chose or cancelled.
    pub(crate) fn show(&mut self, ctx: &egui::Context) -> Option<Answer> {
        let mut answer = None;
        egui::Window::new(self.want.title())
            .id(egui::Id::unique("path field"))
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .default_width(ctx.content_rect().width().min(560.0) - 40.0)
            .show(ctx, |ui| {
                ui.label("Type a path (Tab completes it) or pick from the list:");
                let label = ui.label("Path");
                let edit = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.text)
                            .id(egui::Id::unique("path field text"))
                            .desired_width(f32::INFINITY)
                            .lock_focus(true),
                    )
                    .labelled_by(label.id);
                if self.focus {
                    edit.request_focus();
                    self.focus = false;
                }
                // What is typed this frame counts at once: the list and the verdict follow it.
                let mut completions = self.listing();
                if edit.has_focus()
                    && ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Tab))
                    && let Some(common) = common_prefix(&completions)
                    && common.len() > self.text.len()
                {
                    self.text = common;
                    move_cursor_to_end(ui.ctx(), edit.id, &self.text);
                    completions = self.listing();
                }
                let checked = self.want.check(&self.path());
                match &checked {
                    Ok(paths) if matches!(self.want, Want::Save { .. }) && paths[0].exists() => {
                        ui.colored_label(ui.visuals().warn_fg_color, "replaces the file there");
                    }
                    Ok(paths) if paths.len() > 1 => {
                        ui.weak(format!("{} audio files", paths.len()));
                    }
                    Ok(_) => {
                        ui.weak(" ");
                    }
                    Err(why) => {
                        ui.colored_label(ui.visuals().warn_fg_color, why);
                    }
                }
                egui::ScrollArea::vertical().max_height(180.0).auto_shrink([false, true]).show(ui, |ui| {
                    for c in completions.iter().take(100) {
                        let name = c.trim_end_matches('/').rsplit('/').next().unwrap_or(c);
                        let shown = if c.ends_with('/') { format!("{name}/") } else { name.to_owned() };
                        if ui.selectable_label(false, shown).clicked() {
                            self.text.clone_from(c);
                            self.focus = true;
                        }
                    }
                });
                ui.horizontal(|ui| {
                    let ok = ui
                        .add_enabled(checked.is_ok(), egui::Button::new(self.want.action()))
                        .on_disabled_hover_text(checked.as_ref().err().cloned().unwrap_or_default());
                    let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if let Ok(paths) = &checked
                        && (ok.clicked() || enter)
                    {
                        answer = Some(Answer::Chosen(self.want.clone(), paths.clone()));
                    }
                    if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                        answer = Some(Answer::Cancelled);
                    }
                });
            });
        answer
    }
}

/// A typed path, a leading `~/` as the home folder.
fn expand(text: &str) -> PathBuf {
    let text = text.trim();
    match text.strip_prefix("~/") {
        Some(rest) => {
            directories::UserDirs::new().map_or_else(|| PathBuf::from(text), |u| u.home_dir().join(rest))
        }
        None => PathBuf::from(text),
    }
}

fn move_cursor_to_end(ctx: &egui::Context, id: egui::Id, text: &str) {
    if let Some(mut state) = egui::TextEdit::load_state(ctx, id) {
        let end = egui::text::CCursor::new(text.chars().count());
        state.cursor.set_char_range(Some(egui::text::CCursorRange::one(end)));
        state.store(ctx, id);
    }
}

/// The longest start all completions share.
fn common_prefix(all: &[String]) -> Option<String> {
    let first = all.first()?;
    let mut end = first.len();
    for s in &all[1..] {
        let differs = first.char_indices().zip(s.chars()).find(|((_, a), b)| a != b);
        end = end.min(differs.map_or(s.len(), |((i, _), _)| i));
    }
    Some(first[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zenity_on_the_path_or_a_portal_file_chooser_with_a_bus_means_a_dialog() {
        let dir = tempfile::tempdir().expect("temp");
        let bin = dir.path().join("bin");
        let share = dir.path().join("share");
        std::fs::create_dir_all(&bin).expect("bin");
        std::fs::create_dir_all(share.join("xdg-desktop-portal/portals")).expect("portals");
        let data = share.to_string_lossy().into_owned();
        let why = why_no_dialog(bin.as_os_str(), &data, true).expect("nothing: no dialog");
        assert!(why.contains("zenity") && why.contains("portal"), "{why}");
        // A portal that does not choose files does not count.
        std::fs::write(
            share.join("xdg-desktop-portal/portals/wlr.portal"),
            "[portal]\nDBusName=org.freedesktop.impl.portal.desktop.wlr\nInterfaces=org.freedesktop.impl.portal.Screenshot;\n",
        )
        .expect("write");
        assert!(why_no_dialog(bin.as_os_str(), &data, true).is_some());
        std::fs::write(
            share.join("xdg-desktop-portal/portals/gtk.portal"),
            "[portal]\nDBusName=org.freedesktop.impl.portal.desktop.gtk\nInterfaces=org.freedesktop.impl.portal.FileChooser;\n",
        )
        .expect("write");
        assert_eq!(why_no_dialog(bin.as_os_str(), &data, true), None);
        let why = why_no_dialog(bin.as_os_str(), &data, false).expect("no bus: no portal");
        assert!(why.contains("session bus"), "{why}");
        std::fs::write(bin.join("zenity"), "").expect("write");
        assert_eq!(why_no_dialog(bin.as_os_str(), "", false), None);
    }

    #[test]
    fn each_choice_says_why_a_path_does_not_do() {
        let dir = tempfile::tempdir().expect("temp");
        let wav = dir.path().join("a.wav");
        let png = dir.path().join("b.png");
        let txt = dir.path().join("c.txt");
        for f in [&wav, &png, &txt] {
            std::fs::write(f, "x").expect("write");
        }
        let missing = dir.path().join("nothing.wav");
        assert_eq!(Want::Audio.check(&wav), Ok(vec![wav.clone()]));
        assert_eq!(Want::Audio.check(dir.path()), Ok(vec![wav.clone()]), "a folder gives its audio files");
        assert!(Want::Audio.check(&png).expect_err("refused").contains("not an audio file"));
        assert!(Want::Audio.check(&missing).expect_err("refused").contains("no such file"));
        assert!(Want::Audio.check(&dir.path().join("sub")).is_err());
        assert_eq!(Want::SimilarImage.check(&png), Ok(vec![png.clone()]));
        assert!(Want::SimilarImage.check(&wav).expect_err("refused").contains("not an image"));
        assert!(Want::SimilarImage.check(dir.path()).expect_err("refused").contains("folder"));
        assert_eq!(Want::Library.check(dir.path()), Ok(vec![dir.path().to_path_buf()]));
        assert!(Want::Library.check(&txt).is_err());
        let save = Want::Save {
            file_name: "t.srt".into(),
            transcript: crate::speech::Transcript::default(),
            format: crate::speech::export::Format::Srt,
        };
        assert_eq!(save.check(&dir.path().join("t.srt")), Ok(vec![dir.path().join("t.srt")]));
        assert!(save.check(&dir.path().join("no/t.srt")).expect_err("refused").contains("no such folder"));
        assert!(save.check(dir.path()).expect_err("refused").contains("file name"));
    }

    #[test]
    fn completions_list_folders_then_wanted_files_and_tab_takes_their_common_start() {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::create_dir(dir.path().join("speech")).expect("dir");
        std::fs::create_dir(dir.path().join(".hidden")).expect("dir");
        for f in ["spoken.wav", "spoken2.mp3", "spot.png", "notes.txt"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let base = format!("{}/", dir.path().display());
        let mut field = PathField::new(Want::Audio);
        field.text = format!("{base}sp");
        assert_eq!(
            field.completions(10),
            [format!("{base}speech/"), format!("{base}spoken.wav"), format!("{base}spoken2.mp3")]
        );
        assert_eq!(common_prefix(&field.completions(10)), Some(format!("{base}sp")));
        field.text = format!("{base}spok");
        assert_eq!(common_prefix(&field.completions(10)), Some(format!("{base}spoken")));
        field.text.clone_from(&base);
        assert!(
            !field.completions(10).iter().any(|c| c.contains(".hidden")),
            "hidden folders are not offered"
        );
        field.text = format!("{base}.h");
        assert_eq!(field.completions(10), [format!("{base}.hidden/")]);
    }
}
