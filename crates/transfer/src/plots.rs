//! Pictures, each written as PNG and SVG with plotters (DejaVu Sans is embedded, so no system
//! fonts are needed): training curves, confusion matrices and a t-SNE map of per-protein
//! features coloured by class.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::error::TransferError;
use crate::metrics::Confusion;

/// Ten distinguishable colours (matplotlib's tab10).
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type DrawResult = Result<(), String>;

/// A curve: legend, points, and whether it is the validation split.
type Series<'a> = (String, &'a Vec<(f64, f64)>, bool);

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration only fails for a corrupt font, and this one is compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draws with `draw` into `stem.png` and `stem.svg`; returns both paths.
macro_rules! render {
    ($stem:expr, $size:expr, $draw:ident, $($arg:expr),*) => {{
        register_fonts();
        let stem: &Path = $stem;
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        let fail = |path: &Path, message: String| TransferError::Plot { path: path.to_path_buf(), message };
        {
            let root = BitMapBackend::new(&png, $size).into_drawing_area();
            $draw(&root, $($arg),*).map_err(|m| fail(&png, m))?;
            root.present().map_err(|e| fail(&png, e.to_string()))?;
        }
        {
            let root = SVGBackend::new(&svg, $size).into_drawing_area();
            $draw(&root, $($arg),*).map_err(|m| fail(&svg, m))?;
            root.present().map_err(|e| fail(&svg, e.to_string()))?;
        }
        Ok::<(PathBuf, PathBuf), TransferError>((png, svg))
    }};
}

/// Per-epoch series read from `metrics.jsonl`: training values averaged over the epoch,
/// validation values as logged.
#[derive(Debug, Default, Clone)]
pub struct Curves {
    /// `metric -> [(epoch, value)]` for training.
    pub train: BTreeMap<String, Vec<(f64, f64)>>,
    /// `metric -> [(epoch, value)]` for validation.
    pub valid: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Curves {
    /// Reads a `metrics.jsonl` written by prottrans' progress renderer.
    pub fn read(path: &Path) -> Result<Self, TransferError> {
        let text = std::fs::read_to_string(path).map_err(TransferError::io(path))?;
        let mut train: BTreeMap<String, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
        let mut valid: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
        for line in text.lines() {
            let Ok(serde_json::Value::Object(map)) =
                serde_json::from_str::<serde_json::Value>(line)
            else {
                continue;
            };
            let Some(epoch) = map.get("epoch").and_then(|e| e.as_u64()) else {
                continue;
            };
            let split = map.get("split").and_then(|s| s.as_str()).unwrap_or("");
            for (key, value) in &map {
                let Some(value) = value.as_f64() else {
                    continue;
                };
                if matches!(key.as_str(), "epoch" | "step" | "learning_rate") {
                    continue;
                }
                match split {
                    "train" => {
                        let slot = train
                            .entry(key.clone())
                            .or_default()
                            .entry(epoch)
                            .or_insert((0.0, 0.0));
                        slot.0 += value;
                        slot.1 += 1.0;
                    }
                    "valid" => {
                        valid.entry(key.clone()).or_default().insert(epoch, value);
                    }
                    _ => {}
                }
            }
        }
        Ok(Curves {
            train: train
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.into_iter().map(|(e, (s, n))| (e as f64, s / n)).collect(),
                    )
                })
                .collect(),
            valid: valid
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(|(e, x)| (e as f64, x)).collect()))
                .collect(),
        })
    }
}

fn draw_curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, curves: &Curves) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 2));
    let accuracy_keys: Vec<&String> = curves.valid.keys().filter(|k| k.starts_with('q')).collect();
    let groups: [(&str, Vec<&String>); 2] = [
        (
            "loss",
            curves
                .valid
                .keys()
                .filter(|k| k.as_str() == "loss")
                .collect(),
        ),
        ("accuracy (%)", accuracy_keys),
    ];
    for (panel, (label, keys)) in panels.iter().zip(groups) {
        // (legend, points, validation?)
        let mut series: Vec<Series<'_>> = Vec::new();
        for key in keys {
            if let Some(points) = curves.train.get(key) {
                series.push((format!("train {key}"), points, false));
            }
            if let Some(points) = curves.valid.get(key) {
                series.push((format!("valid {key}"), points, true));
            }
        }
        let all = series.iter().flat_map(|(_, p, _)| p.iter());
        let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::MAX, f64::MIN);
        for &(x, y) in all {
            x_max = x_max.max(x);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        if y_min > y_max {
            (y_min, y_max) = (0.0, 1.0);
        }
        let pad = ((y_max - y_min) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(panel)
            .caption(label, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5f64..x_max + 0.5, (y_min - pad)..(y_max + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, points, dashed)) in series.iter().enumerate() {
            let colour = COLOURS[(i / 2) % COLOURS.len()];
            let style = if *dashed {
                colour.stroke_width(2)
            } else {
                colour.mix(0.5).stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Training and validation loss and accuracies per epoch, from `metrics.jsonl`, to
/// `stem.png` and `stem.svg`.
pub fn training_curves(metrics: &Path, stem: &Path) -> Result<(PathBuf, PathBuf), TransferError> {
    let curves = Curves::read(metrics)?;
    render!(stem, (1100, 450), draw_curves, &curves)
}

fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    confusion: &Confusion,
    classes: &[String],
    title: &str,
) -> DrawResult {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let k = confusion.classes;
    let support = confusion.support();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(170)
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(|e| e.to_string())?;
    // Row r from the bottom holds true class k - 1 - r, so class 0 is on top.
    let x_name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => classes.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let y_name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < k => classes.get(k - 1 - *i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(k + 1)
        .y_labels(k + 1)
        .x_label_formatter(&x_name)
        .y_label_formatter(&y_name)
        .x_desc("predicted")
        .y_desc("true")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())?;
    let cells = || (0..k).flat_map(|t| (0..k).map(move |p| (t, p)));
    let share = |t: usize, p: usize| confusion.get(t, p) as f64 / support[t].max(1) as f64;
    chart
        .draw_series(cells().map(|(t, p)| {
            let shade = (255.0 * (1.0 - share(t, p))) as u8;
            let row = k - 1 - t;
            Rectangle::new(
                [
                    (SegmentValue::Exact(p), SegmentValue::Exact(row)),
                    (SegmentValue::Exact(p + 1), SegmentValue::Exact(row + 1)),
                ],
                RGBColor(shade, shade, 255).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(cells().map(|(t, p)| {
            let colour = if share(t, p) > 0.5 { WHITE } else { BLACK };
            let style = ("sans-serif", if k > 8 { 10 } else { 13 })
                .into_font()
                .color(&colour)
                .pos(Pos::new(HPos::Center, VPos::Center));
            Text::new(
                format!("{}", confusion.get(t, p)),
                (SegmentValue::CenterOf(p), SegmentValue::CenterOf(k - 1 - t)),
                style,
            )
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A confusion matrix (rows true, columns predicted, shaded by row share, counts written)
/// to `stem.png` and `stem.svg`.
pub fn confusion_matrix(
    confusion: &Confusion,
    classes: &[String],
    title: &str,
    stem: &Path,
) -> Result<(PathBuf, PathBuf), TransferError> {
    render!(stem, (760, 680), draw_confusion, confusion, classes, title)
}

/// t-SNE coordinates (2-D) of `points`, Barnes-Hut, seeded initialisation.
pub fn tsne(points: &[Vec<f32>], seed: u64) -> Result<Vec<(f32, f32)>, TransferError> {
    let n = points.len();
    if n < 5 {
        return Err(TransferError::Invalid(format!(
            "t-SNE needs at least 5 points, got {n}"
        )));
    }
    let perplexity = 30f32.min((n as f32 - 1.0) / 3.0 - 0.01);
    let mut rng = StdRng::seed_from_u64(seed);
    let initial: Vec<f32> = (0..2 * n)
        .map(|_| 1e-4 * (rng.random::<f32>() - 0.5))
        .collect();
    let euclidean = |a: &Vec<f32>, b: &Vec<f32>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    };
    let mut tsne: bhtsne::tSNE<f32, Vec<f32>> = bhtsne::tSNE::new(points);
    let embedding = tsne
        .perplexity(perplexity)
        .epochs(1000)
        .initial_embedding(initial)
        .barnes_hut(0.5, euclidean)
        .embedding();
    Ok(embedding.chunks(2).map(|c| (c[0], c[1])).collect())
}

fn draw_map<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    coordinates: &[(f32, f32)],
    labels: &[i64],
    classes: &[&str],
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in coordinates {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let pad = 0.05 * (x1 - x0).max(y1 - y0).max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_axes()
        .draw()
        .map_err(|e| e.to_string())?;
    for (class, name) in classes.iter().enumerate() {
        let colour = COLOURS[class % COLOURS.len()];
        let points: Vec<(f32, f32)> = coordinates
            .iter()
            .zip(labels)
            .filter(|(_, l)| **l == class as i64)
            .map(|(p, _)| *p)
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, colour.mix(0.75).filled())),
            )
            .map_err(|e| e.to_string())?
            .label(format!("{name} ({})", points.len()))
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
    }
    let unknown: Vec<(f32, f32)> = coordinates
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l < 0)
        .map(|(p, _)| *p)
        .collect();
    if !unknown.is_empty() {
        chart
            .draw_series(
                unknown
                    .iter()
                    .map(|&p| Circle::new(p, 2, BLACK.mix(0.25).filled())),
            )
            .map_err(|e| e.to_string())?
            .label(format!("unlabelled ({})", unknown.len()))
            .legend(|(x, y)| Circle::new((x + 6, y), 3, BLACK.mix(0.25).filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A t-SNE map of `points` coloured by `labels` (indices into `classes`; negative =
/// unlabelled) to `stem.png` and `stem.svg`.
pub fn tsne_map(
    points: &[Vec<f32>],
    labels: &[i64],
    classes: &[&str],
    title: &str,
    stem: &Path,
) -> Result<(PathBuf, PathBuf), TransferError> {
    let coordinates = tsne(points, 42)?;
    render!(
        stem,
        (980, 820),
        draw_map,
        &coordinates,
        labels,
        classes,
        title
    )
}
