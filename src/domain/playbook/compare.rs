//! Comparing entry rules: "does every window that meets rule `a` also meet rule `b`?"
//!
//! Rules are monotone (raising any day's AQI never un-meets them), and only the cut points matter:
//! a value between two thresholds behaves like the lowest value of its band. So it is enough to try
//! every window over the bands of both rules, at the length of the forecast horizon. That is exact and
//! small for real playbooks (4–6 bands, 7–10 days); a window set too large to try is shortened.

use super::Rule;

/// Most windows tried for one comparison.
const MAX_WINDOWS: u64 = 2_000_000;

/// A window of daily AQI that meets `a` but not `b`, if there is one.
pub(crate) fn counterexample(a: &Rule, b: &Rule, horizon_days: u32) -> Option<Vec<u16>> {
    let mut values = vec![0u16];
    a.cut_points(&mut values);
    b.cut_points(&mut values);
    values.sort_unstable();
    values.dedup();
    let base = values.len() as u64;
    let mut len = horizon_days.max(a.max_days()).max(b.max_days()).max(1) as usize;
    while len > 1 && base.saturating_pow(len as u32) > MAX_WINDOWS {
        len -= 1;
    }
    let mut digits = vec![0usize; len];
    let mut window: Vec<Option<u16>> = vec![Some(values[0]); len];
    loop {
        for (w, d) in window.iter_mut().zip(&digits) {
            *w = Some(values[*d]);
        }
        if a.matches(&window).is_some() && b.matches(&window).is_none() {
            return Some(window.iter().map(|v| v.unwrap_or(0)).collect());
        }
        // Next window, like counting in base `values.len()`.
        let mut i = 0;
        loop {
            if i == len {
                return None;
            }
            digits[i] += 1;
            if digits[i] < values.len() {
                break;
            }
            digits[i] = 0;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(t: u16, d: u32) -> Rule {
        Rule::Above {
            threshold: t,
            inclusive: false,
            days: d,
        }
    }

    #[test]
    fn the_national_red_rule_implies_orange_and_orange_implies_yellow() {
        let red = Rule::All(vec![gt(200, 3), gt(300, 1)]);
        let orange = Rule::Any(vec![gt(200, 2), gt(150, 3)]);
        let yellow = Rule::Any(vec![gt(200, 1), gt(150, 2)]);
        assert_eq!(counterexample(&red, &orange, 7), None);
        assert_eq!(counterexample(&orange, &yellow, 7), None);
        assert!(counterexample(&yellow, &orange, 7).is_some());
    }

    #[test]
    fn a_lower_threshold_is_met_wherever_the_higher_one_is() {
        assert_eq!(counterexample(&gt(200, 2), &gt(180, 2), 7), None);
        assert_eq!(counterexample(&gt(180, 2), &gt(200, 2), 7), Some(vec![181, 181, 0, 0, 0, 0, 0]));
    }
}
