//! A stand-alone virtual terminal for trying the screens and the control
//! API by hand, without the agent or a backend:
//!
//! ```text
//! cargo run -p hal --example virtual_terminal -- [127.0.0.1:7070] [240x320|480x320]
//! ```
//!
//! Open the printed address in a browser. OK starts a sale of NGN 2,000.00,
//! a digit 1-9 a sale of that many thousand naira, 0 a refund of NGN 500.00,
//! back shows the end-of-day screen. Tap a test card; cancel aborts.
//! Cards ending 0002 and 9995 are declined as the backend simulator would.

use std::net::SocketAddr;
use std::time::Duration;

use embedded_graphics::prelude::Size;
use hal::virtual_device::VirtualParts;
use hal::{
    Button, CardReader, Display, Indicator, Input, ReadPurpose, ReadRequest, ReaderError, Signal,
    VirtualDevice, serve_control,
};
use proto::{Currency, Money};
use tokio_util::sync::CancellationToken;
use ui::{
    Amount, CancelReason, CardSummary, DeclineReason, Screen, SessionTotals, StatusLine, Tally,
    View,
};

/// How long a result screen stays unless a button is pressed.
const RESULT_HOLD: Duration = Duration::from_secs(4);
const TAP_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:7070").parse()?;
    let size = match args.next().as_deref() {
        Some("480x320") => Size::new(480, 320),
        _ => Size::new(240, 320),
    };
    let (device, parts) = VirtualDevice::new(size);
    let shutdown = CancellationToken::new();
    let bound = serve_control(addr, device, shutdown.clone()).await?;
    println!("virtual terminal on http://{bound}/ (Ctrl-C to stop)");
    tokio::select! {
        result = run(parts) => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    shutdown.cancel();
    Ok(())
}

struct Terminal {
    parts: VirtualParts,
    status: StatusLine,
    totals: SessionTotals,
}

impl Terminal {
    async fn show(&mut self, view: View) -> Result<(), hal::DisplayError> {
        let screen = Screen::new(self.status.clone(), view);
        let display = &mut self.parts.display;
        ui::render(&screen, display)?;
        display.set_state(&screen.state());
        display.flush().await
    }

    /// Waits for a button, or `hold` to pass.
    async fn button_or(&mut self, hold: Duration) -> Result<Option<Button>, hal::InputError> {
        tokio::select! {
            b = self.parts.input.next_button() => b.map(Some),
            () = tokio::time::sleep(hold) => Ok(None),
        }
    }

    async fn payment(
        &mut self,
        amount: Money,
        purpose: ReadPurpose,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let shown = Amount::new(amount, Currency::Ngn);
        self.show(match purpose {
            ReadPurpose::Sale => View::TapCard {
                amount: shown,
                tip: None,
            },
            ReadPurpose::Refund => View::RefundTap { amount: shown },
        })
        .await?;
        let cancel = CancellationToken::new();
        let request = ReadRequest {
            amount,
            currency: Currency::Ngn,
            purpose,
            timeout: TAP_TIMEOUT,
        };
        let read = {
            let read = self.parts.reader.read_card(request, cancel.clone());
            tokio::pin!(read);
            loop {
                tokio::select! {
                    r = &mut read => break r,
                    b = self.parts.input.next_button() => {
                        if b? == Button::Cancel {
                            cancel.cancel();
                        }
                    }
                }
            }
        };
        let view = match read {
            Ok(card) => {
                self.parts.indicator.signal(Signal::CardRead).await?;
                self.show(View::Processing {
                    amount: shown,
                    message: String::new(),
                    tip: None,
                })
                .await?;
                let reason = match card.last4() {
                    "0002" => Some(DeclineReason::CardDeclined),
                    "9995" => Some(DeclineReason::InsufficientFunds),
                    _ => None,
                };
                match reason {
                    Some(reason) => {
                        self.totals.declined.count += 1;
                        self.totals.declined.total = self.totals.declined.total.add(amount);
                        View::Declined {
                            amount: shown,
                            reason,
                            tip: None,
                            receipt_url: None,
                        }
                    }
                    None => {
                        let tally = match purpose {
                            ReadPurpose::Sale => &mut self.totals.sales,
                            ReadPurpose::Refund => &mut self.totals.refunds,
                        };
                        tally.count += 1;
                        tally.total = tally.total.add(amount);
                        View::Approved {
                            amount: shown,
                            card: Some(CardSummary {
                                brand: hal::brand_label(card.brand()).to_owned(),
                                last4: card.last4().to_owned(),
                            }),
                            offline: false,
                            tip: None,
                            receipt_url: None,
                            print_prompt: false,
                            transfer: false,
                        }
                    }
                }
            }
            Err(ReaderError::Cancelled) => View::Cancelled {
                amount: Some(shown),
                reason: CancelReason::Cashier,
            },
            Err(ReaderError::Timeout(_)) => View::Cancelled {
                amount: Some(shown),
                reason: CancelReason::TimedOut,
            },
            Err(e) => View::Error {
                message: format!("Card could not be read ({}). Try again.", e.code()),
            },
        };
        let signal = if matches!(view, View::Approved { .. }) {
            Signal::Success
        } else {
            Signal::Failure
        };
        self.parts.indicator.signal(signal).await?;
        self.show(view).await?;
        self.button_or(RESULT_HOLD).await?;
        Ok(())
    }
}

async fn run(parts: VirtualParts) -> Result<(), Box<dyn std::error::Error>> {
    let mut t = Terminal {
        parts,
        status: StatusLine {
            printer_problem: None,
            event_name: "Virtual terminal".to_owned(),
            terminal_label: "Demo".to_owned(),
            offline: false,
            queued: 0,
            parked: 0,
            operator: None,
        },
        totals: SessionTotals {
            currency: Currency::Ngn,
            sales: Tally::default(),
            refunds: Tally::default(),
            declined: Tally::default(),
        },
    };
    loop {
        t.show(View::Idle).await?;
        match t.parts.input.next_button().await? {
            Button::Ok => {
                t.payment(Money::parse("2000.00")?, ReadPurpose::Sale)
                    .await?
            }
            Button::Digit(d) if d.value() > 0 => {
                let amount = Money::from_minor(u64::from(d.value()) * 100_000)?;
                t.payment(amount, ReadPurpose::Sale).await?;
            }
            Button::Digit(_) => {
                t.payment(Money::parse("500.00")?, ReadPurpose::Refund)
                    .await?
            }
            Button::Back => {
                t.show(View::SessionClosed { totals: t.totals }).await?;
                t.button_or(Duration::from_secs(3600)).await?;
            }
            Button::Cancel | Button::Menu | Button::Up | Button::Down => {}
        }
    }
}
