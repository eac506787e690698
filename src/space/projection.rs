//! A 2-D picture of the shared space: the two principal components of a set of vectors (PCA by
//! power iteration with deflation), for the window's scatter plot of transcripts, commands,
//! queries and images.

use super::Embedding;

/// Iterations of the power method per component: plenty for a few hundred 384-d vectors.
const ITERATIONS: usize = 100;

/// Each vector's coordinates on the first two principal components of the set (centred).
/// Fewer than two vectors, or vectors that do not vary, give zeros.
pub fn pca_2d(vectors: &[Embedding]) -> Vec<[f32; 2]> {
    let n = vectors.len();
    let Some(dim) = vectors.first().map(|v| v.as_slice().len()) else { return Vec::new() };
    let mut mean = vec![0f64; dim];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v.as_slice()) {
            *m += f64::from(*x) / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| v.as_slice().iter().zip(&mean).map(|(x, m)| f64::from(*x) - m).collect())
        .collect();
    let mut components: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        // A deterministic start that is not orthogonal to everything.
        let mut u: Vec<f64> = (0..dim).map(|i| 1.0 + ((i * 7 + c * 13) % 11) as f64 / 11.0).collect();
        for _ in 0..ITERATIONS {
            // u ← Xᵀ X u, then remove the components found already.
            let scores: Vec<f64> = centred.iter().map(|row| dot(row, &u)).collect();
            let mut next = vec![0f64; dim];
            for (row, s) in centred.iter().zip(&scores) {
                for (acc, x) in next.iter_mut().zip(row) {
                    *acc += s * x;
                }
            }
            for prev in &components {
                let d = dot(&next, prev);
                for (x, p) in next.iter_mut().zip(prev) {
                    *x -= d * p;
                }
            }
            let norm = dot(&next, &next).sqrt();
            if norm < 1e-12 {
                u = vec![0.0; dim];
                break;
            }
            u = next.into_iter().map(|x| x / norm).collect();
        }
        components.push(u);
    }
    centred.iter().map(|row| [dot(row, &components[0]) as f32, dot(row, &components[1]) as f32]).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_spread_along_the_main_axes() {
        // Points on a line along (1, 1, 0) plus a smaller spread along (0, 0, 1).
        let vectors: Vec<Embedding> = (0..20)
            .map(|i| {
                let t = i as f32 - 9.5;
                Embedding::normalised(vec![10.0 + t, 10.0 + t, 0.3 * (i % 3) as f32])
            })
            .collect();
        let points = pca_2d(&vectors);
        assert_eq!(points.len(), 20);
        let spread = |k: usize| {
            let m = points.iter().map(|p| p[k]).sum::<f32>() / 20.0;
            points.iter().map(|p| (p[k] - m).powi(2)).sum::<f32>()
        };
        assert!(spread(0) > spread(1), "the first axis carries the most variance");
        assert!(spread(1) > 0.0);
        assert!(pca_2d(&[]).is_empty());
        assert_eq!(pca_2d(&vectors[..1]), vec![[0.0, 0.0]]);
    }
}
