//! Commands queued for terminals, sent on their streams and acknowledged.

use proto::TerminalId;
use proto::wire::{
    AckReason, AckStatus, Command, CommandAck, CommandBody, PaymentStatus, Timestamp,
};

use crate::error::ApiErr;

use super::{CommandRec, State, kind, short_id};

impl State {
    pub(super) fn push_command(
        &mut self,
        id: &TerminalId,
        body: CommandBody,
        now: Timestamp,
    ) -> Option<String> {
        let t = self.terminals.get_mut(id)?;
        t.last_seq += 1;
        let seq = t.last_seq;
        let command_id = short_id("cmd_");
        let rec = CommandRec {
            terminal_id: id.clone(),
            seq,
            command: Command {
                command_id: command_id.clone(),
                body,
            },
            ack: None,
            created_at: now,
        };
        self.commands
            .entry(id.clone())
            .or_default()
            .insert(seq, rec);
        self.dirty(kind::TERMINAL, id.as_str());
        self.dirty(kind::COMMAND, format!("{id}/{seq}"));
        self.effects.wake.push(id.clone());
        Some(command_id)
    }

    /// Commands to send on a stream: after `after` when the terminal gave a
    /// `Last-Event-ID`, otherwise every command not yet acknowledged. A
    /// command about a payment that is already settled (approved, declined,
    /// aborted, timed out, failed: by whatever path) is never delivered,
    /// nor delivered again.
    pub fn commands_for(&self, id: &TerminalId, after: Option<u64>) -> Vec<(u64, Command)> {
        let Some(m) = self.commands.get(id) else {
            return Vec::new();
        };
        let from = after.map_or(0, |a| a.saturating_add(1));
        m.range(from..)
            .map(|(_, c)| c)
            .filter(|c| after.is_some() || c.ack.is_none())
            .filter(|c| !self.settled(&c.command.body))
            .map(|c| (c.seq, c.command.clone()))
            .collect()
    }

    /// Whether the command is about a payment already in a final status.
    fn settled(&self, body: &CommandBody) -> bool {
        let payment_id = match body {
            CommandBody::Sale { payment_id, .. }
            | CommandBody::Refund { payment_id, .. }
            | CommandBody::Abort { payment_id } => payment_id,
            CommandBody::SessionClosed {} | CommandBody::TransferReceived { .. } => return false,
        };
        self.payments
            .get(payment_id)
            .is_some_and(|p| p.payment.status.is_final())
    }

    pub fn ack(
        &mut self,
        id: &TerminalId,
        command_id: &str,
        ack: CommandAck,
        now: Timestamp,
    ) -> Result<(), ApiErr> {
        if ack.status == AckStatus::Rejected && ack.reason.is_none() {
            return Err(ApiErr::unprocessable(
                "missing_reason",
                "a rejected ack needs a reason",
            ));
        }
        let m = self
            .commands
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("command", command_id))?;
        let rec = m
            .values_mut()
            .find(|c| c.command.command_id == command_id)
            .ok_or_else(|| ApiErr::not_found("command", command_id))?;
        if let Some(prev) = rec.ack {
            // Idempotent; the first answer stands.
            if prev != ack {
                return Err(ApiErr::conflict(
                    "already_acknowledged",
                    "this command was already acknowledged differently",
                ));
            }
            return Ok(());
        }
        rec.ack = Some(ack);
        let seq = rec.seq;
        let body = rec.command.body.clone();
        self.dirty(kind::COMMAND, format!("{id}/{seq}"));
        if ack.status == AckStatus::Rejected {
            let reason = ack.reason.unwrap_or(AckReason::InvalidRequest);
            match body {
                CommandBody::Sale { payment_id, .. } | CommandBody::Refund { payment_id, .. } => {
                    self.finish_payment(
                        &payment_id,
                        PaymentStatus::Failed,
                        Some(reason.as_str().into()),
                        now,
                    );
                }
                CommandBody::Abort { payment_id } => {
                    if let Some(p) = self.payments.get_mut(&payment_id) {
                        p.abort_rejected = Some(reason);
                        self.dirty(kind::PAYMENT, payment_id.as_str());
                        self.effects.payments_changed = true;
                    }
                }
                CommandBody::SessionClosed {} | CommandBody::TransferReceived { .. } => {}
            }
        }
        Ok(())
    }
}
