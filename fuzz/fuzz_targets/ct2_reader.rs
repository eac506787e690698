//! The CTranslate2 model reader (and the ggml reader the converter's tests use) on arbitrary
//! bytes: every variable it returns can be read and converted without a panic.
#![no_main]

use crossmodal::model_store::{ct2::Ct2Model, ggml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Ct2Model::parse(data.to_vec()) {
        let names: Vec<String> = model.names().map(str::to_owned).collect();
        for name in &names {
            if let Some(var) = model.get(name) {
                let _ = model.data(var);
                let _ = model.to_f32(var);
            }
        }
        let _ = model.aliases().count();
        let _ = ggml::hparams(&model);
    }
    let _ = ggml::read(data);
});
