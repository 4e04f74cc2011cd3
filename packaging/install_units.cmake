# Run by `cmake --install`: writes the systemd units with the paths of this
# install (CMAKE_INSTALL_PREFIX is the --prefix given at install time) and
# installs them into PREFIX/lib/systemd/system. Set by the install(CODE) that
# includes this file: UNIT_SOURCE_DIR, UNIT_STAGING_DIR, UNIT_BINDIR, UNIT_DOCDIR.
foreach(unit commitd@.service commit-agent@.service)
  file(READ "${UNIT_SOURCE_DIR}/${unit}.in" text)
  string(REPLACE "@BINDIR@" "${CMAKE_INSTALL_PREFIX}/${UNIT_BINDIR}" text "${text}")
  string(REPLACE "@DOCDIR@" "${CMAKE_INSTALL_PREFIX}/${UNIT_DOCDIR}" text "${text}")
  file(WRITE "${UNIT_STAGING_DIR}/${unit}" "${text}")
  file(INSTALL "${UNIT_STAGING_DIR}/${unit}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
