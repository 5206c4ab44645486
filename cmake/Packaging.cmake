# Installation layout and the Debian package (`make package` → build/bgproxy_<version>_<arch>.deb).
# Binaries go to /usr/bin, the reference config to /etc/bgproxy (a conffile), the unit to
# /lib/systemd/system, bgctl's bash completion and both man pages to /usr/share. The Grafana
# dashboard and the Prometheus alert rules go to /usr/share/bgproxy: they are imported into
# Grafana or read by a Prometheus (often on another host), not configuration of bgproxy itself.

install(TARGETS bgproxy bgctl RUNTIME DESTINATION bin)
install(FILES ${CMAKE_SOURCE_DIR}/conf/bgproxy.yaml DESTINATION /etc/bgproxy)
install(FILES ${CMAKE_SOURCE_DIR}/systemd/bgproxy.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/bgctl.bash-completion
        DESTINATION share/bash-completion/completions RENAME bgctl)
install(FILES ${CMAKE_SOURCE_DIR}/conf/grafana/bgproxy-dashboard.json DESTINATION share/bgproxy/grafana)
install(FILES ${CMAKE_SOURCE_DIR}/conf/prometheus/bgproxy-alerts.yml DESTINATION share/bgproxy/prometheus)

# Man pages come from one source: each program's own --help, through help2man.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(MAN_DIR ${CMAKE_BINARY_DIR}/man)
  add_custom_command(
    OUTPUT ${MAN_DIR}/bgproxy.8 ${MAN_DIR}/bgctl.8
    COMMAND ${CMAKE_COMMAND} -E make_directory ${MAN_DIR}
    COMMAND ${HELP2MAN} --no-info --section 8 --version-string ${PROJECT_VERSION}
            --name "blue/green HTTP reverse proxy with canary and automatic rollback"
            --output ${MAN_DIR}/bgproxy.8 $<TARGET_FILE:bgproxy>
    COMMAND ${HELP2MAN} --no-info --section 8 --version-string ${PROJECT_VERSION}
            --name "control a running bgproxy: split, switch, canary, rollback"
            --output ${MAN_DIR}/bgctl.8 $<TARGET_FILE:bgctl>
    DEPENDS bgproxy bgctl
    COMMENT "Generating man pages")
  add_custom_target(man ALL DEPENDS ${MAN_DIR}/bgproxy.8 ${MAN_DIR}/bgctl.8)
  install(FILES ${MAN_DIR}/bgproxy.8 ${MAN_DIR}/bgctl.8 DESTINATION share/man/man8)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bgproxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "bgproxy maintainers <bgproxy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Blue/green HTTP reverse proxy with weighted canary and automatic rollback")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)  # /etc and /lib/systemd are absolute destinations
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_SOURCE_DIR}/packaging/conffiles;${CMAKE_SOURCE_DIR}/packaging/postinst")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
