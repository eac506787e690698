//! The one place models are loaded: each once, on the engine's device, its status reported as
//! the backend itself says (candle's tensor device, whisper.cpp's own report). Image jobs get
//! an `ImageSpace` built from these same models.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Device;

use super::{DeviceInfo, Event, ModelStatus};
use crate::audio::silero::SileroModel;
use crate::audio::vad;
use crate::commands::Matcher;
use crate::model_store::catalogue::{CLIP, LITE0, MINILM, SILERO_VAD};
use crate::model_store::{self, ModelSpec, ModelStore, Role};
use crate::space::TextEncoder;
use crate::space::clip::ClipEncoder;
use crate::space::conse::{ConseSettings, LiteImageEncoder};
use crate::space::image_lite::LiteNet;
use crate::space::images::{EncoderChoice, ImageSpace};
use crate::speech::Whisper;

/// Where models load and who hears about their status.
pub(super) struct Place<'a> {
    pub store: &'a ModelStore,
    pub device: &'a Device,
    pub info: &'a DeviceInfo,
    /// Ask whisper.cpp for a GPU backend (anything but `CROSSMODAL_DEVICE=cpu`).
    pub whisper_gpu: bool,
    /// Status changes go to the engine's own line (the window's).
    pub main: &'a std::sync::mpsc::Sender<Event>,
    pub notify: &'a super::Notify,
}

impl Place<'_> {
    fn status(&self, name: &'static str, status: ModelStatus) {
        let _ = self.main.send(Event::Model { name, status });
        (self.notify)();
    }
}

/// The models the engine holds once loaded.
#[derive(Default)]
pub(super) struct Models {
    whisper: BTreeMap<&'static str, Arc<Whisper>>,
    text: Option<Arc<TextEncoder>>,
    lite: Option<Arc<LiteImageEncoder>>,
    clip: Option<Arc<ClipEncoder>>,
    voice: Option<Arc<SileroModel>>,
    /// The command set made ready to match (its phrases embedded by `text`).
    pub matcher: Option<Matcher>,
}

/// The name of a candle device as its tensors report it.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "CPU".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("CUDA GPU {gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("Metal GPU {gpu_id}"),
    }
}

impl Models {
    fn is_loaded(&self, spec: &ModelSpec) -> bool {
        match spec.role {
            Role::Speech | Role::SpeechMultilingual => self.whisper.contains_key(spec.name),
            Role::Text => self.text.is_some(),
            Role::ImageLite => self.lite.is_some(),
            Role::ImageClip => self.clip.is_some(),
            Role::Voice => self.voice.is_some(),
        }
    }

    /// Loads a model unless it is loaded, reporting its status; returns the reason it failed.
    pub fn ensure(&mut self, place: &Place<'_>, spec: &'static ModelSpec) -> Result<(), String> {
        if self.is_loaded(spec) { Ok(()) } else { self.load(place, spec) }
    }

    /// Loads (or loads again) a model and reports its status.
    pub fn load(&mut self, place: &Place<'_>, spec: &'static ModelSpec) -> Result<(), String> {
        place.status(spec.name, ModelStatus::Loading);
        let (status, result) = match self.load_model(place, spec) {
            Ok(device) => (ModelStatus::Ready { device }, Ok(())),
            Err(e) if !place.store.is_installed(spec) => (ModelStatus::NotInstalled, Err(e)),
            Err(e) => (ModelStatus::Failed(e.clone()), Err(e)),
        };
        place.status(spec.name, status);
        result
    }

    /// Loads one model after checking its files; returns the device it runs on, as reported.
    fn load_model(&mut self, place: &Place<'_>, spec: &'static ModelSpec) -> Result<String, String> {
        let path = place.store.open_checked(spec).map_err(|e| e.to_string())?;
        let dir = place.store.model_dir(spec);
        match spec.role {
            Role::Speech | Role::SpeechMultilingual => {
                // Whisper finds where speech begins with the voice detector.
                let detector = self.voice(place)?;
                let whisper = Whisper::load(&path, place.whisper_gpu, detector).map_err(|e| e.to_string())?;
                // A fallback is worth saying only where a GPU was to be expected: the engine's
                // device is one, or failed to start, or this build is for whisper.cpp's Vulkan.
                let expected =
                    place.info.gpu || place.info.gpu_failed().is_some() || cfg!(feature = "vulkan");
                let device = match whisper.gpu_fallback() {
                    Some(why) if expected => format!("{} ({why})", whisper.device()),
                    _ => whisper.device().to_owned(),
                };
                self.whisper.insert(spec.name, Arc::new(whisper));
                Ok(device)
            }
            Role::Text => {
                let encoder = TextEncoder::load(&dir, place.device).map_err(|e| e.to_string())?;
                let device = device_name(encoder.device());
                self.text = Some(Arc::new(encoder));
                // Phrases embedded by an encoder that is gone are stale.
                self.matcher = None;
                Ok(device)
            }
            Role::ImageLite => {
                // The lite encoder lands images in the text encoder's space: it needs it first.
                let text = self.text(place)?;
                let net = LiteNet::load(&path, place.device).map_err(|e| e.to_string())?;
                let lite =
                    LiteImageEncoder::new(net, &text, ConseSettings::default()).map_err(|e| e.to_string())?;
                let device = device_name(lite.device());
                self.lite = Some(Arc::new(lite));
                Ok(device)
            }
            Role::ImageClip => {
                let clip = ClipEncoder::load(&dir, place.device).map_err(|e| e.to_string())?;
                let device = device_name(clip.device());
                self.clip = Some(Arc::new(clip));
                Ok(device)
            }
            Role::Voice => {
                // Plain loops on the CPU: 32 ms of audio at a time is too little for a GPU.
                self.voice = Some(vad::detector_model(place.store).map_err(|e| e.to_string())?);
                Ok("CPU".to_owned())
            }
        }
    }

    /// The voice detector, loaded if needed.
    pub fn voice(&mut self, place: &Place<'_>) -> Result<Arc<SileroModel>, String> {
        self.ensure(place, model_store::spec(SILERO_VAD).map_err(|e| e.to_string())?)?;
        self.voice.clone().ok_or_else(|| "the voice detector could not be loaded".to_owned())
    }

    /// A Whisper model by catalogue name, loaded if needed.
    pub fn whisper(&mut self, place: &Place<'_>, model: &str) -> Result<&Whisper, String> {
        let spec = model_store::spec(model).map_err(|e| e.to_string())?;
        if !matches!(spec.role, Role::Speech | Role::SpeechMultilingual) {
            return Err(format!("{model} is not a speech model"));
        }
        self.ensure(place, spec)?;
        self.whisper.get(spec.name).map(AsRef::as_ref).ok_or_else(|| format!("{model} could not be loaded"))
    }

    /// A Whisper model by catalogue name, loaded if needed, for a thread of its own.
    pub fn whisper_shared(&mut self, place: &Place<'_>, model: &str) -> Result<Arc<Whisper>, String> {
        self.whisper(place, model)?;
        let spec = model_store::spec(model).map_err(|e| e.to_string())?;
        self.whisper.get(spec.name).cloned().ok_or_else(|| format!("{model} could not be loaded"))
    }

    /// The text encoder, loaded if needed.
    pub fn text(&mut self, place: &Place<'_>) -> Result<Arc<TextEncoder>, String> {
        self.ensure(place, model_store::spec(MINILM).map_err(|e| e.to_string())?)?;
        self.text.clone().ok_or_else(|| "the text encoder could not be loaded".to_owned())
    }

    /// The image space asked for (CLIP when installed, with `Auto`), its models loaded if needed.
    pub fn image_space(&mut self, place: &Place<'_>, choice: EncoderChoice) -> Result<ImageSpace, String> {
        let clip = model_store::spec(CLIP).map_err(|e| e.to_string())?;
        let use_clip = match choice {
            EncoderChoice::Clip => true,
            EncoderChoice::Lite => false,
            EncoderChoice::Auto => place.store.is_installed(clip),
        };
        if use_clip {
            self.ensure(place, clip)?;
            let clip = self.clip.clone().ok_or("CLIP could not be loaded")?;
            return Ok(ImageSpace::Clip(clip));
        }
        let text = self.text(place)?;
        self.ensure(place, model_store::spec(LITE0).map_err(|e| e.to_string())?)?;
        let lite = self.lite.clone().ok_or("the lite image encoder could not be loaded")?;
        Ok(ImageSpace::Lite { text, lite })
    }

    /// The matcher and the models it needs for one utterance.
    pub fn for_commands(
        &mut self,
        place: &Place<'_>,
        model: &str,
    ) -> Result<(&Whisper, &TextEncoder, &Matcher), String> {
        self.whisper(place, model)?;
        let spec = model_store::spec(model).map_err(|e| e.to_string())?;
        match (self.whisper.get(spec.name).map(AsRef::as_ref), self.text.as_deref(), self.matcher.as_ref()) {
            (Some(w), Some(t), Some(m)) => Ok((w, t, m)),
            _ => Err("no command set is loaded".into()),
        }
    }
}
