#!/bin/sh
# Start-up of the Mosquitto container of the StackWatch compose stack.
#
# Writes the password file and the ACL from environment variables at every start, so that no
# credential (not even a password hash) is kept in the repository, the image or a volume, and a
# password changed in .env takes effect on the next `docker compose up`. Then it replaces itself
# with the broker (the command given as arguments).
#
# Environment:
#   MQTT_SERVICE_USER, MQTT_SERVICE_PASSWORD  StackWatch's own account
#   MQTT_SENSOR_USER, MQTT_SENSOR_PASSWORD    the sensor gateway's account
#   MQTT_SENSOR_PLANT                          plant id whose topics the gateway may publish to
#   MOSQUITTO_ACL_TEMPLATE  ACL with @...@ placeholders   (default /mosquitto/config/acl)
#   MOSQUITTO_AUTH_DIR      where passwd and acl go       (default /mosquitto/auth)
#   MOSQUITTO_DATA_DIR      persistence directory          (default /mosquitto/data)
#   MOSQUITTO_RUN_USER      user the broker drops to       (default mosquitto)
set -eu

die() {
    echo "mosquitto entrypoint: $*" >&2
    exit 1
}

# User names go into the ACL and the password file: refuse characters that could break either
# format or inject ACL lines (spaces, ':', '/', '#', '+', newlines).
check_user() {
    case "$2" in
        '' | *[!A-Za-z0-9_.-]*) die "$1 must be set and use only letters, digits, '_', '.' and '-'" ;;
    esac
}

check_password() {
    [ -n "$2" ] || die "$1 must be set (REQUIRED in .env)"
}

# The same rule as plant ids in the plant configuration (stream/plant.py).
check_plant() {
    case "$1" in
        '' | [!a-z0-9]* | *[!a-z0-9_-]*) die "MQTT_SENSOR_PLANT must be a plant id: a-z, 0-9, '_' and '-'" ;;
    esac
    [ "${#1}" -le 63 ] || die "MQTT_SENSOR_PLANT must be at most 63 characters"
}

service_user=${MQTT_SERVICE_USER:-}
service_password=${MQTT_SERVICE_PASSWORD:-}
sensor_user=${MQTT_SENSOR_USER:-}
sensor_password=${MQTT_SENSOR_PASSWORD:-}
sensor_plant=${MQTT_SENSOR_PLANT:-}
acl_template=${MOSQUITTO_ACL_TEMPLATE:-/mosquitto/config/acl}
auth_dir=${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}
data_dir=${MOSQUITTO_DATA_DIR:-/mosquitto/data}
run_user=${MOSQUITTO_RUN_USER:-mosquitto}

check_user MQTT_SERVICE_USER "$service_user"
check_password MQTT_SERVICE_PASSWORD "$service_password"
check_user MQTT_SENSOR_USER "$sensor_user"
check_password MQTT_SENSOR_PASSWORD "$sensor_password"
check_plant "$sensor_plant"
[ "$service_user" != "$sensor_user" ] || die "MQTT_SERVICE_USER and MQTT_SENSOR_USER must differ"
[ -r "$acl_template" ] || die "cannot read the ACL template $acl_template"

umask 077
mkdir -p "$auth_dir"
rm -f "$auth_dir/passwd" "$auth_dir/acl"
mosquitto_passwd -b -c "$auth_dir/passwd" "$service_user" "$service_password"
mosquitto_passwd -b "$auth_dir/passwd" "$sensor_user" "$sensor_password"
sed -e "s/@MQTT_SERVICE_USER@/$service_user/g" \
    -e "s/@MQTT_SENSOR_USER@/$sensor_user/g" \
    -e "s/@MQTT_SENSOR_PLANT@/$sensor_plant/g" \
    "$acl_template" >"$auth_dir/acl"

# Started as root, Mosquitto drops to $run_user before it reads these files and writes its
# persistence database; it also warns about (and newer releases refuse) auth files that are
# owned by another user or readable by others.
if [ "$(id -u)" = 0 ]; then
    chown -R "$run_user:$run_user" "$auth_dir"
    if [ -d "$data_dir" ]; then
        chown -R "$run_user:$run_user" "$data_dir"
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- mosquitto -c /mosquitto/config/mosquitto.conf
fi
exec "$@"
