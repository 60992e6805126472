//! `--unmask`: a request to see some of a runbook's masked attributes in clear. Only attributes the runbook lists
//! under `unmaskable` qualify; the request then needs one more distinct approver than the runbook's normal count
//! (`AccessRequest::create` adds it), and the attributes shown in clear are part of the rendered request, so the
//! fingerprint, the card and the audit trail all carry them.

use std::fmt;

use super::{RenderedQuery, Runbook};

/// Why an `--unmask` was refused. Shown to the requester as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskError {
    pub attribute: String,
    /// What the runbook lets be unmasked (may be empty).
    pub unmaskable: Vec<String>,
}

impl fmt::Display for UnmaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` cannot be unmasked with this runbook — ", self.attribute)?;
        if self.unmaskable.is_empty() {
            f.write_str("it lets no attribute be unmasked; ask without --unmask")
        } else {
            write!(f, "it lets you unmask only: {}", self.unmaskable.join(", "))
        }
    }
}

impl std::error::Error for UnmaskError {}

impl Runbook {
    /// Moves the requested attributes from the masked to the unmasked list of `query`, or refuses the first one
    /// the runbook does not allow. Asking for nothing returns the query unchanged.
    pub fn unmask(&self, mut query: RenderedQuery, requested: &[String]) -> Result<RenderedQuery, UnmaskError> {
        let mut unmasked: Vec<String> = Vec::new();
        for attribute in requested {
            let allowed = self.unmaskable.contains(attribute) && query.masked_attributes.contains(attribute);
            if !allowed {
                return Err(UnmaskError { attribute: attribute.clone(), unmaskable: self.unmaskable.clone() });
            }
            if !unmasked.contains(attribute) {
                unmasked.push(attribute.clone());
            }
        }
        unmasked.sort();
        query.masked_attributes.retain(|a| !unmasked.contains(a));
        query.unmasked_attributes = unmasked;
        Ok(query)
    }
}
