//! Playbook, list, roster and forecast errors and refused actions in Chinese, for the people who read them on
//! the dashboard (检查 page, refused reloads, the list's reports, a forecast refused on the 会商 page, a sign,
//! lift or cancel refused).
//!
//! In: the English message of a [`super::PlaybookError`] (the CLI and the logs keep it). Out: the same
//! message in Chinese, with the same file, line and column. One table, English pattern → Chinese template:
//! `*` in a pattern captures text, `{0}`, `{1}` … in the template put it back. A message that matches no
//! pattern is shown as it is.

/// `(English pattern, Chinese template)`, the most specific first.
const TABLE: &[(&str, &str)] = &[
    ("unknown field `*`, expected one of *", "未知字段“{0}”，可用的字段为：{1}"),
    ("unknown field `*`, expected *", "未知字段“{0}”，可用的字段为：{1}"),
    ("missing field `*`", "缺少字段“{0}”"),
    ("mismatched bracket '*' closed by '*'", "括号不匹配：“{0}”被“{1}”闭合"),
    ("region code \"*\" must be 6 digits", "地区代码“{0}”须为 6 位数字"),
    (
        "region code \"*\" must contain only the digits 0-9",
        "地区代码“{0}”只能包含数字 0-9",
    ),
    (
        "region code \"*\" has province prefix *, outside GB/T 2260's 11..=82",
        "地区代码“{0}”的省级前缀 {1} 不在 GB/T 2260 的 11 至 82 之内",
    ),
    (
        "region code \"*\" has a county part but no city part",
        "地区代码“{0}”有县级部分却没有市级部分",
    ),
    ("key \"*\" appears twice", "字段“{0}”出现了两次"),
    ("expected a whole number, 0 or more", "应为不小于 0 的整数"),
    ("expected true or false", "应为 true 或 false"),
    ("expected a list", "应为列表"),
    ("expected a mapping (key: value)", "应为映射（键: 值）"),
    ("cannot read folder: *", "无法读取目录：{0}"),
    ("cannot read: *", "无法读取文件：{0}"),
    ("playbook id \"*\" is also used by *", "预案 id“{0}”已被 {1} 使用"),
    ("parent playbook \"*\" has errors", "上级预案“{0}”有错误"),
    ("unknown parent playbook \"*\"", "未知的上级预案“{0}”"),
    ("playbook \"*\" extends itself through \"*\"", "预案“{0}”经由“{1}”继承了自身"),
    ("unknown region group \"*\"", "未知的地区组“{0}”"),
    ("unknown region *", "未知地区 {0}"),
    (
        "scope * is not below the scope * of the parent playbook \"*\"",
        "适用范围 {0} 不在上级预案“{2}”的适用范围 {1} 之内",
    ),
    (
        "horizon_days must be from 1 to 10, not *",
        "horizon_days（预报天数）须为 1 至 10，现为 {0}",
    ),
    (
        "lift_window_hours * h is laxer than the * h of parent playbook \"*\"",
        "lift_window_hours（解除所需时长）{0} 小时短于上级预案“{2}”的 {1} 小时，宽于上级",
    ),
    (
        "approval_form_hours must be above 0",
        "approval_form_hours（审批表填报时限）须大于 0",
    ),
    ("relay_hours must be above 0", "relay_hours（转发各部门时限）须大于 0"),
    ("reports.to.name must not be empty", "reports.to.name（上级报送单位名称）不能为空"),
    (
        "reports.to.email \"*\" is not a mail address",
        "reports.to.email（上级报送邮箱）“{0}”不是有效的邮箱地址",
    ),
    (
        "reports.event_within_hours must be above 0",
        "reports.event_within_hours（预警信息报送时限）须大于 0",
    ),
    (
        "republish_hours: unknown level \"*\"",
        "republish_hours（定时重新发布间隔）：未知的预警级别“{0}”",
    ),
    (
        "republish_hours.* must be above 0",
        "republish_hours（定时重新发布间隔）{0} 须大于 0",
    ),
    (
        "reports.daily_at \"*\" is not a time of day (HH:MM)",
        "reports.daily_at（日报时间）“{0}”不是有效的时刻（时:分）",
    ),
    (
        "hold_higher: false is laxer than parent playbook \"*\", which holds the higher level",
        "hold_higher: false 宽于上级预案“{0}”（上级频繁波动时按高级别预警执行）",
    ),
    (
        "record_before_sign: false is laxer than parent playbook \"*\", which signs only after the consultation's record",
        "record_before_sign: false 宽于上级预案“{0}”（上级要求会商意见填写完成后方可签发）",
    ),
    (
        "level_pollutants: unknown pollutant \"*\" (pm25, pm10, o3, so2, no2, co)",
        "level_pollutants：未知污染物“{0}”（可用 pm25、pm10、o3、so2、no2、co）",
    ),
    (
        "level_pollutants leaves out *, which the parent playbook counts: laxer than the parent",
        "level_pollutants 漏掉了上级预案计入的 {0}，宽于上级",
    ),
    ("issuer.name must not be empty", "issuer.name（发布单位名称）不能为空"),
    (
        "issuer.sender \"*\" must be one word without spaces, commas or <>& (CAP 1.2 sender)",
        "issuer.sender“{0}”须为不含空格、逗号和 <>& 的一个词（CAP 1.2 sender）",
    ),
    (
        "a playbook that extends none needs levels",
        "不继承上级的预案须定义预警级别（levels）",
    ),
    ("a child playbook cannot change a level's rank", "下级预案不能修改预警级别的 rank"),
    ("level \"*\" needs *", "预警级别“{0}”缺少：{1}"),
    ("\"none\" is reserved for \"no warning\"", "“none”保留表示“无预警”，请换一个级别 id"),
    ("rank must be 1 or more", "rank 须不小于 1"),
    (
        "level id \"*\" is defined twice (first at line *)",
        "预警级别 id“{0}”定义了两次（第一次在第 {1} 行）",
    ),
    (
        "levels \"*\" and \"*\" have the same rank *",
        "预警级别“{0}”和“{1}”的 rank 相同（{2}）",
    ),
    (
        "thresholds must increase with rank: level \"*\" (rank *) is met by every forecast that meets \"*\" (rank *)",
        "启动条件须随级别升高而收紧：满足“{2}”（rank {3}）的预报都满足“{0}”（rank {1}）",
    ),
    (
        "undefined role \"*\" in sign_off (auto or one of: *)",
        "sign_off 中的角色“{0}”未定义（可用 auto 或：{1}）",
    ),
    ("colour \"*\" is not #RRGGBB", "颜色“{0}”不是 #RRGGBB 格式"),
    (
        "bad cron expression \"*\": *; write 6 or 7 fields, seconds first (\"0 0 9 * * *\" is 09:00 daily)",
        "会商时间（cron）“{0}”有误：{1}；请写 6 或 7 个字段，秒在最前（“0 0 9 * * *”为每天 09:00）",
    ),
    (
        "a rule is exactly one of: all, any, or aqi_gt/aqi_ge with days",
        "一条规则只能是 all、any 或带 days 的 aqi_gt/aqi_ge 三者之一",
    ),
    ("all/any needs at least one rule", "all/any 至少需要一条规则"),
    (
        "a threshold needs days: the number of consecutive days",
        "阈值须给出 days（连续天数）",
    ),
    ("threshold * is above 500, the top of the AQI scale", "阈值 {0} 超过 AQI 上限 500"),
    (
        "days must be from 1 to the horizon of * days, not *",
        "days 须为 1 至预报天数 {0}，现为 {1}",
    ),
    (
        "level \"*\" is laxer than in parent playbook \"*\": daily AQI * meets the parent's rule (*) but not this one (*)",
        "预警级别“{0}”宽于上级预案“{1}”：日AQI {2} 满足上级的条件（{3}），却不满足本预案的条件（{4}）",
    ),
    (
        "level \"*\" is laxer than in parent playbook \"*\": signed by *, the parent needs * or higher",
        "预警级别“{0}”宽于上级预案“{1}”：由 {2} 签发，上级要求 {3} 或更高",
    ),
    ("undefined level \"*\" (defined: *)", "未定义的预警级别“{0}”（已定义：{1}）"),
    (
        "region group \"*\" has no member below its issuer's scope *",
        "地区组“{0}”没有位于发布方适用范围 {1} 之内的成员",
    ),
    (
        "a directive reaches only regions below its issuer's scope *; * is not",
        "调度令只能针对发布方适用范围 {0} 之内的地区，{1} 不在其内",
    ),
    (
        "\"*\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)",
        "“{0}”不是时间（RFC 3339 或 YYYY-MM-DD HH:MM）",
    ),
    ("a directive's until must be after its from", "调度令的 until 须晚于 from"),
    // Actions refused on the dashboard (签发/解除/取消未成功, 未重新载入): authority and the warning's state.
    (
        "role \"*\" may not sign a * warning (needs *)",
        "角色“{0}”无权签发 {1} 级预警（须由“{2}”签发）",
    ),
    (
        "role \"*\" may not lift a * warning: needs role \"*\" or higher (playbook *)",
        "角色“{0}”无权解除 {1} 级预警：须由“{2}”或更高的角色操作（预案 {3}）",
    ),
    (
        "role \"*\" may not cancel a * warning: needs role \"*\" or higher (playbook *)",
        "角色“{0}”无权取消 {1} 级预警：须由“{2}”或更高的角色操作（预案 {3}）",
    ),
    (
        "role \"*\" may not reload the playbooks: needs role \"*\" (the highest staff role)",
        "角色“{0}”无权重新载入预案：须由“{1}”（最高的值班角色）操作",
    ),
    ("nothing awaits sign-off in region *", "地区 {0} 没有待签发的预警"),
    ("region * has no live warning", "地区 {0} 没有未结束的预警"),
    (
        "warning * is held by directive * until it is released",
        "预警 {0} 受调度令 {1} 约束，调度令解除前不能变更",
    ),
    (
        "warning * has started; lift it instead of cancelling",
        "预警 {0} 已开始执行，只能解除，不能取消",
    ),
    ("warning * is lifted, not live", "预警 {0} 已解除"),
    ("warning * is cancelled, not live", "预警 {0} 已取消"),
    ("warning * is withdrawn, not live", "预警 {0} 的提议已撤回"),
    ("warning * is *, not live", "预警 {0} 已结束（{1}）"),
    ("no warning *", "没有预警 {0}"),
    ("no playbook governs region *", "没有适用于地区 {0} 的预案"),
    ("undefined level \"*\"", "未定义的预警级别“{0}”"),
    // Forecasts refused on the dashboard (预报被拒绝): the parser's reasons, CSV and JSON.
    ("date \"*\" is not YYYY-MM-DD", "日期“{0}”不是 YYYY-MM-DD 格式"),
    ("* \"*\" is not a number", "{0}“{1}”不是数字"),
    ("unknown column \"*\" (expected *)", "未知列“{0}”（可用的列为：{1}）"),
    ("column \"*\" appears twice", "列“{0}”出现了两次"),
    ("missing column \"*\"", "缺少列“{0}”"),
    (
        "no issue time: add a \"# issued_at: 2026-12-01 16:00\" line (or \"issued_at\" in JSON)",
        "缺少发布时间：请加一行“# issued_at: 2026-12-01 16:00”（JSON 中为字段“issued_at”）",
    ),
    ("aqi * is above 500, the top of the AQI scale", "AQI {0} 超过 AQI 上限 500"),
    ("aqi * is not a whole number", "AQI {0} 不是整数"),
    (
        "* * * is above * *, twice the top breakpoint (*) of the * table: no monitor measures that",
        "{0} 浓度 {1} {2} 超过 {3} {4}（{6} 分级表最高一档 {5} 的两倍），不可能是监测值",
    ),
    ("* * is negative", "{0} 为 {1}，不能为负数"),
    (
        "region * has no value for * (dates must be consecutive)",
        "地区 {0} 缺少 {1} 的数值（日期须连续）",
    ),
    ("duplicate value for region * on *", "地区 {0} 在 {1} 的数值重复"),
    (
        "region * has * days; a forecast covers * to * days",
        "地区 {0} 有 {1} 天的数值；一份预报须为 {2} 至 {3} 天",
    ),
    (
        "no value column: give aqi and/or pollutant columns",
        "没有数值列：请给出 aqi 列和/或污染物浓度列",
    ),
    ("row has * cells, the header has *", "该行有 {0} 个字段，表头有 {1} 个"),
    (
        "primary \"*\" is not a pollutant (pm25, pm10, o3, o3_8h, o3_1h, so2, no2, co) or dust",
        "首要污染物“{0}”无法识别（可用 pm25、pm10、o3、o3_8h、o3_1h、so2、no2、co 或沙尘 dust）",
    ),
    ("quoted cells are not supported in forecast CSV", "预报 CSV 不支持带引号的单元格"),
    ("file has no values", "文件中没有数值"),
    ("file has no header row", "文件没有表头行"),
    ("file is empty", "文件为空"),
    ("bytes are not valid UTF-8", "此处不是有效的 UTF-8 编码（请以 UTF-8 保存文件）"),
    (
        "file is * bytes, larger than the limit of * bytes",
        "文件有 {0} 字节，超过上限 {1} 字节",
    ),
    (
        "issued_at \"*\" is not a time (use RFC 3339 or YYYY-MM-DD HH:MM, Asia/Shanghai)",
        "发布时间（issued_at）“{0}”不是时间（请用 RFC 3339 或 YYYY-MM-DD HH:MM，北京时间）",
    ),
    (
        "issued_at * lies in the future: later than * (* minutes ahead of now, forecast.max_ahead_minutes)",
        "发布时间（issued_at）{0} 在未来：晚于 {1}（当前时间之后 {2} 分钟，forecast.max_ahead_minutes）",
    ),
    (
        "issued_at * is too old: earlier than * (* days before now, the longest playbook horizon)",
        "发布时间（issued_at）{0} 过早：早于 {1}（当前时间之前 {2} 天，即各预案中最长的预报天数）",
    ),
    ("unknown field \"*\"", "未知字段“{0}”"),
    ("missing field \"*\"", "缺少字段“{0}”"),
    ("* must be a number", "{0} 须为数字"),
    ("* must be a string", "{0} 须为字符串"),
    // The list's tables (permits.csv, whole_society_emissions.csv), as the list page reports them.
    ("unknown column \"*\" (columns: *)", "未知列“{0}”（可用的列为：{1}）"),
    ("column * appears twice", "列 {0} 出现了两次"),
    ("missing column *", "缺少列 {0}"),
    ("the row has * fields, the header *", "该行有 {0} 个字段，表头有 {1} 个"),
    ("air_emitting must be 1 or 0, got \"*\"", "air_emitting 须为 1 或 0，现为“{0}”"),
    (
        "duplicate permit number * (first at line *)",
        "排污许可证编号 {0} 重复（第一次在第 {1} 行）",
    ),
    ("duplicate region * (first at line *)", "地区 {0} 重复（第一次在第 {1} 行）"),
    ("* \"*\" must be a number ≥ 0 (t/day)", "{0}“{1}”须为不小于 0 的数（吨/日）"),
    ("* is empty", "{0} 为空"),
    // The duty roster's calendar (值班表的节假日、调休、换班与特别安排) and the staff tokens file.
    ("\"*\" is not a date (YYYY-MM-DD)", "“{0}”不是日期（YYYY-MM-DD）"),
    (
        "\"*\" is not a weekday (mon … fri): a 调休 working day follows a weekday's shifts",
        "“{0}”不是工作日（mon … fri）：调休上班日按某个工作日的班次值班",
    ),
    ("unknown person \"*\"", "值班表中没有人员“{0}”"),
    ("\"*\" has no shift on * to give", "“{0}”在 {1} 没有可换出的班次"),
    ("the shift of \"*\" on * is swapped twice", "“{0}”在 {1} 的班次被换了两次"),
    (
        "\"*\" is on the roster of *, not of * like \"*\"",
        "“{0}”在 {1} 的值班表上，与“{3}”（{2}）不同，不能换班",
    ),
    (
        "\"*\" is on the roster of *, neither * nor a tier above it",
        "“{0}”在 {1} 的值班表上，既不属于 {2}，也不属于其上级",
    ),
    (
        "this override of * overlaps the one at line * (*): one region has one override at a time",
        "{0} 的这条特别安排与第 {1} 行（{2}）的重叠：同一地区同一时间只能有一条特别安排",
    ),
    ("an override needs people (who is on duty then)", "特别安排须写明值班人员"),
    ("* is both a holiday and a working day", "{0} 既是节假日又是调休上班日"),
    ("* is named twice as a working day", "{0} 作为调休上班日出现了两次"),
    ("* is already a holiday", "{0} 已是节假日"),
    (
        "the holiday ends (*) before it begins (*)",
        "节假日的结束日（{0}）早于开始日（{1}）",
    ),
    ("a holiday needs a name (春节, 国庆节, …)", "节假日须有名称（春节、国庆节等）"),
    ("a person cannot take their own shift", "不能与自己换班"),
    ("the sha256 of * is not 64 hex digits", "{0} 的 sha256 不是 64 位十六进制数"),
    ("expected name,role,sha256", "应为 name,role,sha256"),
];

/// A message in Chinese (as it is when no pattern matches).
pub fn message(english: &str) -> String {
    // serde_json's own reason follows; it is shown only when it has a translation.
    if let Some(reason) = english.strip_prefix("invalid JSON: ") {
        let zh = message(reason);
        return if zh == reason {
            "不是有效的 JSON（请检查此处的括号、逗号和引号）".into()
        } else {
            format!("不是有效的 JSON：{zh}")
        };
    }
    for (pattern, template) in TABLE {
        if let Some(caps) = captures(pattern, english) {
            let mut out = (*template).to_string();
            for (i, c) in caps.iter().enumerate() {
                // A list of keys or ids reads as a Chinese list: id、version、name.
                let list = c.contains(", ") && c.chars().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || "_, ".contains(x));
                let c = if list { c.replace(", ", "、") } else { c.clone() };
                out = out.replace(&format!("{{{i}}}"), &c);
            }
            return out;
        }
    }
    english.to_string()
}

/// A `file:line:column: message` line with its message in Chinese; other lines as they are.
pub fn line(text: &str) -> String {
    let bytes = text.as_bytes();
    // The first ":<digits>:<digits>: " ends the place.
    let mut i = 0;
    while let Some(off) = text[i..].find(':') {
        let start = i + off;
        let digits = |from: usize| from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        let a = digits(start + 1);
        if a > start + 1 && bytes.get(a) == Some(&b':') {
            let b = digits(a + 1);
            if b > a + 1 && text[b..].starts_with(": ") {
                return format!("{}{}", &text[..b + 2], message(&text[b + 2..]));
            }
        }
        i = start + 1;
    }
    text.to_string()
}

/// The texts the `*`s of `pattern` stand for in `text`, shortest first; `None` when it does not match.
fn captures(pattern: &str, text: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text.strip_prefix(parts[0])?;
    let mut caps = Vec::new();
    for (i, part) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            caps.push(rest.strip_suffix(part)?.to_string());
            rest = "";
        } else {
            let at = rest.find(part)?;
            caps.push(rest[..at].to_string());
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty().then_some(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_values_and_place_and_read_in_chinese() {
        assert_eq!(
            line("/p/taiyuan.yaml:7:20: lift_window_hours 24 h is laxer than the 36 h of parent playbook \"shanxi\""),
            "/p/taiyuan.yaml:7:20: lift_window_hours（解除所需时长）24 小时短于上级预案“shanxi”的 36 小时，宽于上级"
        );
        assert_eq!(
            message("unknown field `lift_windows`, expected one of id, version"),
            "未知字段“lift_windows”，可用的字段为：id、version"
        );
        assert_eq!(message("rank must be 1 or more"), "rank 须不小于 1");
        assert_eq!(message("rank must be 1 or more, really"), "rank must be 1 or more, really");
        assert_eq!(line("roster.yaml: no people"), "roster.yaml: no people");
        assert_eq!(
            line(
                "/etc/hazeflow/roster.yaml:283:7: this override of 140100 overlaps the one at line 282 (2027-02-05): one region has one override at a time"
            ),
            "/etc/hazeflow/roster.yaml:283:7: 140100 的这条特别安排与第 282 行（2027-02-05）的重叠：同一地区同一时间只能有一条特别安排"
        );
        assert_eq!(
            line("r.yaml:18:66: unknown person \"ty-nobody\""),
            "r.yaml:18:66: 值班表中没有人员“ty-nobody”"
        );
        assert_eq!(
            line("seeds/registry/whole_society_emissions.csv:4:3: nox \"-1\" must be a number ≥ 0 (t/day)"),
            "seeds/registry/whole_society_emissions.csv:4:3: nox“-1”须为不小于 0 的数（吨/日）"
        );
        assert_eq!(line("permits.csv:2:1: permit_no is empty"), "permits.csv:2:1: permit_no 为空");
    }

    #[test]
    fn a_forecasts_reasons_read_in_chinese_with_their_values() {
        let cases = [
            ("aqi -5 is negative", "aqi 为 -5，不能为负数"),
            ("aqi \"high\" is not a number", "aqi“high”不是数字"),
            (
                "unknown column \"wind\" (expected region, date, aqi, o3_8h, primary)",
                "未知列“wind”（可用的列为：region、date、aqi、o3_8h、primary）",
            ),
            (
                "pm25 99999 µg/m³ is above 1000 µg/m³, twice the top breakpoint (500) of the hj633-2026 table: no monitor measures that",
                "pm25 浓度 99999 µg/m³ 超过 1000 µg/m³（hj633-2026 分级表最高一档 500 的两倍），不可能是监测值",
            ),
            (
                "issued_at 2026-12-09T14:00:00+08:00 lies in the future: later than 2026-12-01T16:00:00+08:00 (60 minutes ahead of now, forecast.max_ahead_minutes)",
                "发布时间（issued_at）2026-12-09T14:00:00+08:00 在未来：晚于 2026-12-01T16:00:00+08:00（当前时间之后 60 分钟，forecast.max_ahead_minutes）",
            ),
            (
                "region 140100 has 11 days; a forecast covers 1 to 10 days",
                "地区 140100 有 11 天的数值；一份预报须为 1 至 10 天",
            ),
            ("invalid JSON: expected value", "不是有效的 JSON（请检查此处的括号、逗号和引号）"),
            ("invalid JSON: missing field `values`", "不是有效的 JSON：缺少字段“values”"),
        ];
        for (english, zh) in cases {
            assert_eq!(message(english), zh, "{english}");
        }
    }
}
