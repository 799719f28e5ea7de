use hazeflow::forecast::{self, ParseOptions};
use hazeflow::playbook::load_paths;
use hazeflow::region::Regions;
#[test]
fn probe() {
    let (obs, pbf) = ("tests/fixtures/shanxi_pm25_daily_2014-2015.csv", "playbooks/shanxi.yaml");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = root.join(pbf);
    let set = load_paths(std::slice::from_ref(&p), Regions::shanxi()).unwrap();
    let pb = set.iter().find(|x| x.file == p).unwrap();
    let bytes = std::fs::read(root.join(obs)).unwrap();
    let o = forecast::parse(obs, &bytes, Regions::shanxi(), &ParseOptions::observations()).unwrap();
    let r = hazeflow::replay::replay(&o, pb, Regions::shanxi());
    for e in &r.events { if e.region.to_string() == "141000" && e.at.to_rfc3339() > "2014-12-20".to_string() && e.at.to_rfc3339() < "2015-01-30".to_string() { println!("{} {} {:?}", e.at.with_timezone(&chrono_tz::Asia::Shanghai), e.actor, e.kind); } }
    for a in &r.assessments { if a.region.to_string() == "141000" && a.date.to_string() > "2014-12-20".to_string() && a.date.to_string() < "2015-01-30".to_string() { print!("{}:{} ", a.date, a.level); } }
}
