//! The `[hal] printer` value, parsed into a [`PrinterSpec`]:
//!
//! | value | printer |
//! |---|---|
//! | `none` (the default) | no printer |
//! | `virtual` | the virtual device's printer (`GET /receipts`) |
//! | `escpos:/dev/usb/lp0[?options]` | ESC/POS on a character device (USB printer class, parallel port) |
//! | `escpos-serial:/dev/ttyS1[:baud][?options]` | ESC/POS on a serial line, 8N1, baud 19200 unless given |
//!
//! Options, `&`-separated: `codepage=cp437|cp1252` (default cp437),
//! `paper=58|80` (mm, default 58: 32 or 48 characters a line), and for
//! serial lines `flow=none|rtscts|xonxoff` (default none).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::printer::escpos::EscPosOptions;
use crate::printer::{CodePage, PaperWidth};

/// Baud rates a serial printer is configured with.
pub const SERIAL_BAUDS: [u32; 7] = [2400, 4800, 9600, 19200, 38400, 57600, 115200];
/// The serial baud rate when the spec gives none (most ESC/POS printers
/// ship with 19200 or 9600; the self-test page says which).
pub const DEFAULT_BAUD: u32 = 19200;

/// Serial flow control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlowControl {
    #[default]
    None,
    RtsCts,
    XonXoff,
}

impl FlowControl {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowControl::None => "none",
            FlowControl::RtsCts => "rtscts",
            FlowControl::XonXoff => "xonxoff",
        }
    }
}

/// Which printer to drive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrinterSpec {
    #[default]
    None,
    Virtual,
    /// ESC/POS written to a character device, e.g. `/dev/usb/lp0`.
    EscPosFile {
        path: PathBuf,
        options: EscPosOptions,
    },
    /// ESC/POS on a serial line.
    EscPosSerial {
        path: PathBuf,
        baud: u32,
        flow: FlowControl,
        options: EscPosOptions,
    },
}

/// Why a `printer` value is not a printer; each names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrinterSpecError {
    #[error(
        "unknown printer {value:?}: expected \"none\", \"virtual\", \"escpos:<device>\" or \
         \"escpos-serial:<device>[:<baud>]\""
    )]
    Unknown { value: String },
    #[error("printer {value:?}: the device must be an absolute path")]
    NotAbsolute { value: String },
    #[error("printer {value:?}: baud rate {baud:?} is not one of {SERIAL_BAUDS:?}")]
    BadBaud { value: String, baud: String },
    #[error("printer {value:?}: unknown option {key:?} (codepage, paper{})", if *serial { ", flow" } else { "" })]
    UnknownOption {
        value: String,
        key: String,
        serial: bool,
    },
    #[error("printer {value:?}: option {key}={given:?} is not one of {allowed}")]
    BadOption {
        value: String,
        key: String,
        given: String,
        allowed: &'static str,
    },
}

impl PrinterSpec {
    /// Whether this names a printer at all.
    pub fn is_configured(&self) -> bool {
        *self != PrinterSpec::None
    }
}

fn path_of(value: &str, device: &str) -> Result<PathBuf, PrinterSpecError> {
    if device.len() > 1 && device.starts_with('/') && !device.chars().any(char::is_whitespace) {
        Ok(PathBuf::from(device))
    } else {
        Err(PrinterSpecError::NotAbsolute {
            value: value.to_owned(),
        })
    }
}

fn parse_options(
    value: &str,
    query: Option<&str>,
    serial: bool,
) -> Result<(EscPosOptions, FlowControl), PrinterSpecError> {
    let mut options = EscPosOptions::default();
    let mut flow = FlowControl::None;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let (key, given) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |allowed| PrinterSpecError::BadOption {
            value: value.to_owned(),
            key: key.to_owned(),
            given: given.to_owned(),
            allowed,
        };
        match key {
            "codepage" => {
                options.code_page = match given {
                    "cp437" => CodePage::Cp437,
                    "cp1252" => CodePage::Cp1252,
                    _ => return Err(bad("cp437, cp1252")),
                }
            }
            "paper" => {
                options.paper = match given {
                    "58" => PaperWidth::Mm58,
                    "80" => PaperWidth::Mm80,
                    _ => return Err(bad("58, 80")),
                }
            }
            "flow" if serial => {
                flow = match given {
                    "none" => FlowControl::None,
                    "rtscts" => FlowControl::RtsCts,
                    "xonxoff" => FlowControl::XonXoff,
                    _ => return Err(bad("none, rtscts, xonxoff")),
                }
            }
            _ => {
                return Err(PrinterSpecError::UnknownOption {
                    value: value.to_owned(),
                    key: key.to_owned(),
                    serial,
                });
            }
        }
    }
    Ok((options, flow))
}

impl FromStr for PrinterSpec {
    type Err = PrinterSpecError;

    fn from_str(value: &str) -> Result<PrinterSpec, PrinterSpecError> {
        match value {
            "none" => return Ok(PrinterSpec::None),
            "virtual" => return Ok(PrinterSpec::Virtual),
            _ => {}
        }
        let (head, query) = match value.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (value, None),
        };
        if let Some(device) = head.strip_prefix("escpos:") {
            let path = path_of(value, device)?;
            let (options, _) = parse_options(value, query, false)?;
            return Ok(PrinterSpec::EscPosFile { path, options });
        }
        if let Some(rest) = head.strip_prefix("escpos-serial:") {
            let (device, baud) = match rest.rsplit_once(':') {
                Some((device, baud)) => {
                    let parsed = baud
                        .parse::<u32>()
                        .ok()
                        .filter(|b| SERIAL_BAUDS.contains(b));
                    let Some(baud) = parsed else {
                        return Err(PrinterSpecError::BadBaud {
                            value: value.to_owned(),
                            baud: baud.to_owned(),
                        });
                    };
                    (device, baud)
                }
                None => (rest, DEFAULT_BAUD),
            };
            let path = path_of(value, device)?;
            let (options, flow) = parse_options(value, query, true)?;
            return Ok(PrinterSpec::EscPosSerial {
                path,
                baud,
                flow,
                options,
            });
        }
        Err(PrinterSpecError::Unknown {
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for PrinterSpec {
    /// As written in the config, with every option spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opts = |o: &EscPosOptions| {
            format!(
                "codepage={}&paper={}",
                o.code_page.as_str(),
                o.paper.as_str()
            )
        };
        match self {
            PrinterSpec::None => f.write_str("none"),
            PrinterSpec::Virtual => f.write_str("virtual"),
            PrinterSpec::EscPosFile { path, options } => {
                write!(f, "escpos:{}?{}", path.display(), opts(options))
            }
            PrinterSpec::EscPosSerial {
                path,
                baud,
                flow,
                options,
            } => write!(
                f,
                "escpos-serial:{}:{baud}?{}&flow={}",
                path.display(),
                opts(options),
                flow.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_specs() {
        assert_eq!("none".parse::<PrinterSpec>().unwrap(), PrinterSpec::None);
        assert_eq!(
            "virtual".parse::<PrinterSpec>().unwrap(),
            PrinterSpec::Virtual
        );
        assert_eq!(
            "escpos:/dev/usb/lp0".parse::<PrinterSpec>().unwrap(),
            PrinterSpec::EscPosFile {
                path: "/dev/usb/lp0".into(),
                options: EscPosOptions::default()
            }
        );
        assert_eq!(
            "escpos-serial:/dev/ttyS1:19200"
                .parse::<PrinterSpec>()
                .unwrap(),
            PrinterSpec::EscPosSerial {
                path: "/dev/ttyS1".into(),
                baud: 19200,
                flow: FlowControl::None,
                options: EscPosOptions::default()
            }
        );
        assert_eq!(
            "escpos-serial:/dev/ttyUSB0?paper=80&codepage=cp1252&flow=rtscts"
                .parse::<PrinterSpec>()
                .unwrap(),
            PrinterSpec::EscPosSerial {
                path: "/dev/ttyUSB0".into(),
                baud: DEFAULT_BAUD,
                flow: FlowControl::RtsCts,
                options: EscPosOptions {
                    code_page: CodePage::Cp1252,
                    paper: PaperWidth::Mm80
                }
            }
        );
        for s in [
            "none",
            "virtual",
            "escpos:/dev/usb/lp1?codepage=cp1252&paper=80",
            "escpos-serial:/dev/ttyS1:9600?codepage=cp437&paper=58&flow=xonxoff",
        ] {
            let spec: PrinterSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
            assert_eq!(spec.to_string().parse::<PrinterSpec>().unwrap(), spec);
        }
        assert!(!PrinterSpec::None.is_configured());
        assert!(PrinterSpec::Virtual.is_configured());
    }

    type Expect = fn(&PrinterSpecError) -> bool;

    #[test]
    fn bad_specs_name_the_value() {
        let cases: &[(&str, Expect)] = &[
            ("", |e| matches!(e, PrinterSpecError::Unknown { .. })),
            ("usb", |e| matches!(e, PrinterSpecError::Unknown { .. })),
            ("escpos", |e| matches!(e, PrinterSpecError::Unknown { .. })),
            ("Virtual", |e| matches!(e, PrinterSpecError::Unknown { .. })),
            ("escpos:", |e| {
                matches!(e, PrinterSpecError::NotAbsolute { .. })
            }),
            ("escpos:lp0", |e| {
                matches!(e, PrinterSpecError::NotAbsolute { .. })
            }),
            ("escpos:/", |e| {
                matches!(e, PrinterSpecError::NotAbsolute { .. })
            }),
            ("escpos-serial:ttyS1:9600", |e| {
                matches!(e, PrinterSpecError::NotAbsolute { .. })
            }),
            (
                "escpos-serial:/dev/ttyS1:19201",
                |e| matches!(e, PrinterSpecError::BadBaud { baud, .. } if baud == "19201"),
            ),
            ("escpos-serial:/dev/ttyS1:fast", |e| {
                matches!(e, PrinterSpecError::BadBaud { .. })
            }),
            ("escpos-serial:/dev/ttyS1:", |e| {
                matches!(e, PrinterSpecError::BadBaud { .. })
            }),
            (
                "escpos:/dev/usb/lp0?codepage=utf8",
                |e| matches!(e, PrinterSpecError::BadOption { key, given, .. } if key == "codepage" && given == "utf8"),
            ),
            ("escpos:/dev/usb/lp0?paper=57", |e| {
                matches!(e, PrinterSpecError::BadOption { .. })
            }),
            (
                "escpos:/dev/usb/lp0?flow=rtscts",
                |e| matches!(e, PrinterSpecError::UnknownOption { key, .. } if key == "flow"),
            ),
            (
                "escpos-serial:/dev/ttyS1?speed=1",
                |e| matches!(e, PrinterSpecError::UnknownOption { key, .. } if key == "speed"),
            ),
        ];
        for (value, is) in cases {
            let e = value.parse::<PrinterSpec>().unwrap_err();
            assert!(is(&e), "{value:?}: {e:?}");
            assert!(
                e.to_string().contains(&format!("{value:?}")),
                "{value:?}: {e}"
            );
        }
    }
}
