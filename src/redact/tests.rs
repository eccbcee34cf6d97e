//! The redaction rules, one test per place a secret can be.

use super::*;

#[test]
fn values_go_names_stay() {
    let mut doc = serde_json::json!({
        "Id": "abc",
        "Config": {"Env": ["PATH=/bin", "DB_PASSWORD=hunter2", "EMPTY", "X=a=b"], "Labels": {"k": "v"}},
        "ContainerConfig": {"Env": ["TOKEN=t"]}
    });
    inspect_env(&mut doc);
    assert_eq!(
        doc["Config"]["Env"],
        serde_json::json!([
            "PATH=<redacted>",
            "DB_PASSWORD=<redacted>",
            // A bare name sets no value: nothing to hide (the audit log's rule, now the
            // only one).
            "EMPTY",
            "X=<redacted>"
        ])
    );
    assert_eq!(
        doc["ContainerConfig"]["Env"],
        serde_json::json!(["TOKEN=<redacted>"])
    );
    assert_eq!(doc["Config"]["Labels"]["k"], "v");
    assert!(!doc.to_string().contains("hunter2"));
}

const S: &str = "hunter2";

fn assert_clean(doc: &serde_json::Value) {
    let text = doc.to_string();
    assert!(!text.contains(S), "secret left in {text}");
}

#[test]
fn container_inspect_env_log_options_and_mount_options() {
    let mut doc = serde_json::json!({
        "Config": {"Env": ["A=hunter2"], "Cmd": ["sh"]},
        "HostConfig": {
            "LogConfig": {"Type": "splunk", "Config": {"splunk-token": "hunter2", "max-size": "10m"}},
            "Mounts": [{"Type": "volume", "VolumeOptions": {"DriverConfig": {"Name": "local",
                "Options": {"type": "nfs", "o": "addr=1.2.3.4,password=hunter2,ro", "device": ":/x"}}}}]
        }
    });
    answer(Answer::Container, &mut doc);
    assert_clean(&doc);
    assert_eq!(
        doc["HostConfig"]["LogConfig"]["Config"]["splunk-token"],
        REDACTED
    );
    assert_eq!(doc["HostConfig"]["LogConfig"]["Config"]["max-size"], "10m");
    let opts = &doc["HostConfig"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"];
    assert_eq!(opts["type"], "nfs");
    assert_eq!(opts["o"], "addr=<redacted>,password=<redacted>,ro");
    assert_eq!(opts["device"], REDACTED);
    assert_eq!(doc["Config"]["Env"][0], "A=<redacted>");
}

#[test]
fn builder_records_lose_values_keep_names() {
    for (record, want) in [
        (
            "/bin/sh -c #(nop)  ENV K=hunter2",
            "/bin/sh -c #(nop)  ENV K=<redacted>",
        ),
        (
            "/bin/sh -c #(nop)  ENV K hunter2",
            "/bin/sh -c #(nop)  ENV K <redacted>",
        ),
        (
            "/bin/sh -c #(nop)  ENV A=x hunter2 B=hunter2",
            "/bin/sh -c #(nop)  ENV A=<redacted> <redacted>",
        ),
        (
            "/bin/sh -c #(nop)  ARG TOKEN=hunter2",
            "/bin/sh -c #(nop)  ARG TOKEN=<redacted>",
        ),
        (
            "/bin/sh -c #(nop)  ARG TOKEN",
            "/bin/sh -c #(nop)  ARG TOKEN",
        ),
        (
            "/bin/sh -c #(nop)  CMD [\"sh\"]",
            "/bin/sh -c #(nop)  CMD [\"sh\"]",
        ),
        ("ENV K=hunter2", "ENV K=<redacted>"),
        (
            "/bin/sh -c #(nop)  ONBUILD ENV OB=hunter2",
            "/bin/sh -c #(nop)  ONBUILD ENV OB=<redacted>",
        ),
        ("ONBUILD ARG A=hunter2", "ONBUILD ARG A=<redacted>"),
        ("ONBUILD RUN make", "ONBUILD RUN make"),
        ("env K=hunter2", "env K=<redacted>"),
        ("ARG A=hunter2", "ARG A=<redacted>"),
        (
            "|2 A=hunter2 B=hunter2 /bin/sh -c make",
            "|2 A=<redacted> <redacted> /bin/sh -c make",
        ),
        ("|1 A=hunter2 x y", "|1 A=<redacted> <redacted>"),
        (
            "RUN |1 A=hunter2 /bin/sh -c make # buildkit",
            "RUN |1 A=<redacted> <redacted> /bin/sh -c make # buildkit",
        ),
        ("/bin/sh -c make", "/bin/sh -c make"),
        ("COPY file:abc in /", "COPY file:abc in /"),
    ] {
        assert_eq!(created_by(record), want, "{record}");
    }
}

#[test]
fn image_inspect_command_records_and_onbuild() {
    let mut doc = serde_json::json!({
        "Config": {"Env": ["K=hunter2"], "Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV K=hunter2"],
                   "OnBuild": ["ENV T=hunter2", "RUN make"]},
        "ContainerConfig": {"Cmd": ["|2", "A=hunter2 x", "B=hunter2", "/bin/sh", "-c", "make"]}
    });
    answer(Answer::Image, &mut doc);
    assert_clean(&doc);
    assert_eq!(
        doc["ContainerConfig"]["Cmd"],
        serde_json::json!([
            "|2",
            "A=<redacted>",
            "B=<redacted>",
            "/bin/sh",
            "-c",
            "make"
        ])
    );
    assert_eq!(doc["Config"]["Cmd"][3], "ENV K=<redacted>");
    assert_eq!(doc["Config"]["OnBuild"][1], "RUN make");
}

#[test]
fn history_volumes_plugins_exec_and_disk_usage() {
    let mut history = serde_json::json!([{"CreatedBy": "/bin/sh -c #(nop)  ENV K=hunter2"}, {"CreatedBy": "|1 A=hunter2 /bin/sh -c x"}]);
    answer(Answer::History, &mut history);
    assert_clean(&history);

    let volume = serde_json::json!({"Name": "v", "Driver": "local", "Options": {"type": "cifs", "o": "username=u,password=hunter2", "device": "//h/s"}});
    let mut one = volume.clone();
    answer(Answer::Volume, &mut one);
    assert_clean(&one);
    assert_eq!(
        one["Options"]["o"],
        "username=<redacted>,password=<redacted>"
    );
    let mut list = serde_json::json!({"Volumes": [volume.clone()], "Warnings": null});
    answer(Answer::Volume, &mut list);
    assert_clean(&list);
    assert_eq!(list["Volumes"][0]["Name"], "v");

    let mut plugins =
        serde_json::json!([{"Name": "p", "Settings": {"Env": ["DEBUG=hunter2"], "Args": []}}]);
    answer(Answer::Plugin, &mut plugins);
    assert_clean(&plugins);
    assert_eq!(plugins[0]["Settings"]["Env"][0], "DEBUG=<redacted>");

    let mut exec = serde_json::json!({"ProcessConfig": {"entrypoint": "sh", "arguments": ["-c", "mysql -phunter2"]}});
    answer(Answer::Exec, &mut exec);
    assert_clean(&exec);
    assert_eq!(exec["ProcessConfig"]["entrypoint"], "sh");

    let mut df = serde_json::json!({"Volumes": [volume], "BuildCache": [{"Description": "|1 A=hunter2 /bin/sh -c x"}], "Containers": [], "Images": []});
    answer(Answer::DiskUsage, &mut df);
    assert_clean(&df);
}

/// Service and task answers in the Engine API's shapes (`Service`, `Task`): the test daemon is
/// no swarm manager, so they are unit-tested here.
#[test]
fn service_and_task_specs() {
    let spec = serde_json::json!({
        "ContainerSpec": {"Image": "busybox", "Env": ["DB_PASSWORD=hunter2", "PLAIN"],
            "Mounts": [{"Type": "volume", "Source": "v", "Target": "/v",
                "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "password=hunter2"}}}}]},
        "LogDriver": {"Name": "splunk", "Options": {"splunk-token": "hunter2"}},
        "PluginSpec": {"Name": "p", "Env": ["KEY=hunter2"]},
        "ForceUpdate": 0
    });
    let mut services = serde_json::json!([{
        "ID": "s1", "Spec": {"Name": "web", "TaskTemplate": spec.clone()},
        "PreviousSpec": {"Name": "web", "TaskTemplate": spec.clone()}
    }]);
    answer(Answer::Service, &mut services);
    assert_clean(&services);
    assert_eq!(
        services[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"],
        serde_json::json!(["DB_PASSWORD=<redacted>", "PLAIN"])
    );
    let mut task = serde_json::json!({"ID": "t1", "Spec": spec, "Status": {"State": "running"}});
    answer(Answer::Task, &mut task);
    assert_clean(&task);
    assert_eq!(task["Status"]["State"], "running");
}

#[test]
fn exec_events_lose_their_command() {
    let mut e = serde_json::json!({"status": "exec_start: sh -c echo hunter2", "Action": "exec_create: env X=hunter2",
        "Actor": {"Attributes": {"execID": "e"}}});
    event(&mut e);
    assert_clean(&e);
    let mut h = serde_json::json!({"Action": "health_status: healthy"});
    event(&mut h);
    assert_eq!(h["Action"], "health_status: healthy");
}

#[test]
fn logged_bodies_follow_the_same_rules() {
    let mut body = serde_json::json!({
        "Name": "v", "DriverOpts": {"o": "addr=h,password=hunter2"},
        "HostConfig": {"LogConfig": {"Type": "gelf", "Config": {"gelf-address": "udp://u:hunter2@h"}}},
        "TaskTemplate": {"LogDriver": {"Name": "x", "Options": {"k": "hunter2"}}}
    });
    document(&mut body);
    assert_clean(&body);
    assert_eq!(changes_value("ENV TOKEN=hunter2"), "ENV TOKEN=<redacted>");
    assert_eq!(changes_value("CMD [\"sh\"]"), "CMD [\"sh\"]");
}
